-- wrk script: POST /predict with one PNG as multipart field "file" (like `curl -F file=@digit.png`).
-- Usage: MNISTLITE_BENCH_PNG=digit.png wrk -t1 -c16 -d10s -s benchmarks/wrk_multipart.lua http://127.0.0.1:8000/predict
local path = os.getenv("MNISTLITE_BENCH_PNG") or "tests/data/digit_7.png"
local f = assert(io.open(path, "rb"))
local png = f:read("*all")
f:close()

local boundary = "----mnistlite-wrk-boundary"
wrk.method = "POST"
wrk.headers["Content-Type"] = "multipart/form-data; boundary=" .. boundary
wrk.body = "--" .. boundary .. "\r\n"
    .. "Content-Disposition: form-data; name=\"file\"; filename=\"digit.png\"\r\n"
    .. "Content-Type: image/png\r\n\r\n"
    .. png .. "\r\n--" .. boundary .. "--\r\n"
