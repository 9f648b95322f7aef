-- wrk script for benchmarks/bench_tail_trace.py: POST /predict (one PNG, multipart) with an X-Request-ID per
-- request, and each request's send and answer times (CLOCK_MONOTONIC, the server's time.monotonic()).
-- Writes "id send_ns recv_ns status" lines to $MNISTLITE_TRACE_OUT when wrk ends. One wrk thread (-t1).
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } timespec_t;
int clock_gettime(int clk, timespec_t *tp);
]]
local ts = ffi.new("timespec_t")
local function now_ns()
  ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1e9 + tonumber(ts.tv_nsec)
end

local path = os.getenv("MNISTLITE_BENCH_PNG") or "tests/data/digit_7.png"
local f = assert(io.open(path, "rb"))
local png = f:read("*all")
f:close()
local boundary = "----mnistlite-wrk-boundary"
local body = "--" .. boundary .. "\r\n"
    .. "Content-Disposition: form-data; name=\"file\"; filename=\"digit.png\"\r\n"
    .. "Content-Type: image/png\r\n\r\n" .. png .. "\r\n--" .. boundary .. "--\r\n"
local ctype = "multipart/form-data; boundary=" .. boundary

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

n, sent, lines = 0, {}, {}

function request()
  n = n + 1
  local id = "t" .. n
  sent[id] = now_ns()
  return wrk.format("POST", nil, {["Content-Type"] = ctype, ["X-Request-ID"] = id}, body)
end

function response(status, headers, _)
  local t = now_ns()
  local id = headers["x-request-id"] or headers["X-Request-ID"] or headers["X-Request-Id"]
  if id and sent[id] then
    lines[#lines + 1] = string.format("%s %.0f %.0f %d", id, sent[id], t, status)
    sent[id] = nil
  end
end

function done(summary, latency, requests)
  local out = assert(io.open(os.getenv("MNISTLITE_TRACE_OUT"), "w"))
  for _, thread in ipairs(threads) do
    local got = thread:get("lines")
    for i = 1, #got do
      out:write(got[i], "\n")
    end
  end
  out:close()
end
