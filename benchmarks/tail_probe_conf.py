"""bench_tail.py's gunicorn config: the config at $PERF_BASE_CONF plus GC pause timing per worker."""
import gc
import json
import os
import time

_conf = os.environ["PERF_BASE_CONF"]
exec(compile(open(_conf).read(), _conf, "exec"))  # noqa: S102 - the service's own config, then our hooks


def post_worker_init(worker):
    pauses, started = [], {}

    def timing(phase, info):
        if phase == "start":
            started["t"] = time.perf_counter()
        else:
            pauses.append((time.perf_counter() - started.get("t", time.perf_counter())) * 1e3)

    gc.callbacks.append(timing)
    worker._perf_pauses = pauses


def worker_exit(server, worker):
    with open(os.path.join(os.environ["PERF_OUT"], f"gc-{worker.pid}.json"), "w") as f:
        json.dump(getattr(worker, "_perf_pauses", []), f)
