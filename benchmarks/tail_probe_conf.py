"""bench_tail.py's and bench_tail_trace.py's gunicorn config: the config at $PERF_BASE_CONF plus GC pause
timing per worker, and with PERF_TRACE=1 one record per request (benchmarks/tail_probe_worker.py)."""
import gc
import json
import os
import time

_conf = os.environ["PERF_BASE_CONF"]
exec(compile(open(_conf).read(), _conf, "exec"))  # noqa: S102 - the service's own config, then our hooks

_TRACE = os.environ.get("PERF_TRACE") == "1"
if _TRACE and worker_class == "service.worker.JSONErrorWorker":  # noqa: F821 - set by the exec above
    worker_class = "tail_probe_worker.ProbeWorker"
_base_pre_request, _base_post_request = pre_request, post_request  # noqa: F821
_records, _gc_events = [], []


def post_worker_init(worker):
    pauses, started = [], {}

    def timing(phase, info):
        if phase == "start":
            started["t"] = time.perf_counter()
            started["m"] = time.monotonic()
        else:
            ms = (time.perf_counter() - started.get("t", time.perf_counter())) * 1e3
            pauses.append(ms)
            _gc_events.append((started.get("m", 0.0), ms, info.get("generation", -1)))

    gc.callbacks.append(timing)
    worker._perf_pauses = pauses


def pre_request(worker, req):
    if _TRACE:
        req._perf = (time.monotonic(), time.thread_time())
    _base_pre_request(worker, req)


def post_request(worker, req, environ, resp):
    _base_post_request(worker, req, environ, resp)
    if not _TRACE or not hasattr(req, "_perf"):
        return
    t_end, cpu_end = time.monotonic(), time.thread_time()
    t_head, cpu0 = req._perf
    rid = next((v for k, v in req.headers if k == "X-REQUEST-ID"), "-")
    sock = getattr(getattr(req, "unreader", None), "sock", None)
    accepted, (called, returned, waited) = getattr(sock, "accepted", 0.0), getattr(sock, "last", (0, 0, 0))
    peer = req.peer_addr[1] if isinstance(req.peer_addr, tuple) else 0
    closing = bool(resp is not None and resp.should_close())
    _records.append((rid, os.getpid(), peer, req.req_number, accepted, called, returned, int(waited), t_head,
                     t_end, (cpu_end - cpu0) * 1e6, int(closing), getattr(sock, "started", 0.0)))


def worker_exit(server, worker):
    out = os.environ["PERF_OUT"]
    with open(os.path.join(out, f"gc-{worker.pid}.json"), "w") as f:
        json.dump(getattr(worker, "_perf_pauses", []), f)
    if _TRACE:
        with open(os.path.join(out, f"req-{worker.pid}.tsv"), "w") as f:
            for r in _records:
                f.write("\t".join(str(v) for v in r) + "\n")
        import tail_probe_worker

        with open(os.path.join(out, f"acc-{worker.pid}.tsv"), "w") as f:
            for t, got in getattr(tail_probe_worker, "attempts", []):
                f.write(f"{t}\t{int(got)}\n")
        with open(os.path.join(out, f"gcev-{worker.pid}.tsv"), "w") as f:
            for e in _gc_events:
                f.write("\t".join(str(v) for v in e) + "\n")
