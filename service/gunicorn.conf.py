"""gunicorn settings for the mnistlite service: ``gunicorn -c service/gunicorn.conf.py service.wsgi:app``.

Environment: ``MNISTLITE_BIND`` (e.g. 127.0.0.1:8123; default 0.0.0.0:$PORT, PORT default 8000),
``MNISTLITE_METRICS_BIND`` (the admin listener for /metrics and the full /v1/model; default
0.0.0.0:$METRICS_PORT, METRICS_PORT default 9102, or a free port on MNISTLITE_BIND's host when that is set),
``WEB_CONCURRENCY`` (workers, default 2), ``GUNICORN_TIMEOUT`` (default 30 s),
``PROMETHEUS_MULTIPROC_DIR`` (default: a fresh directory under $TMPDIR, removed at exit).
Only /tmp (or $TMPDIR) is written, so the container's root filesystem can be read-only.

Connections (gevent worker: a slow or idle client holds a greenlet, never a whole worker):
``MNISTLITE_IDLE_TIMEOUT`` (default 5 s): a connection must deliver a complete request head within this
time, on a new connection or between keep-alive requests; an idle or trickling client is then cut off.
``MNISTLITE_BODY_TIMEOUT`` (default 15 s): the body must arrive within this time after its head (408).
``MNISTLITE_DISCARD_MAX_BYTES`` (default 128 MiB): a body the app refused (413) or left unread is read
and thrown away up to this size after the answer, so the client can read the answer; a larger one
closes the connection. ``MNISTLITE_WORKER_CONNECTIONS`` (default 1000): open connections per worker.
``MNISTLITE_UPLOAD_SLOTS`` (default 1): bodies over 1 MiB (or chunked) a worker receives at once; each
is held in memory whole, so this bounds memory under many concurrent photo uploads. The others wait
within their body deadline (408 if none frees up); small requests never wait.
``MNISTLITE_INFLIGHT_BYTES`` (default 32 MiB): body bytes a worker receives and holds at once, across
all its connections, whatever each body's size (bodies up to 16 KiB aside); past it, bodies wait within
their deadline, then get a 503. At least the largest body limit (MNISTLITE_MAX_BODY_BYTES, ..._JSON_BYTES).
``MNISTLITE_KEEPALIVE_REQUESTS`` (default 1000): requests per kept-alive connection before the answer says
"Connection: close" (0: never). Connections spread evenly over the workers: a worker holding more than
another leaves new connections to it, and one holding two or more above it answers "Connection: close"
(service/handoff.py).
``GUNICORN_GRACEFUL_TIMEOUT`` (default 20 s): how long a stopping worker finishes what it accepted.

preload_app: the master imports the app and loads the model once, then forks; workers share the
weights and imported modules copy-on-write (less memory per worker, faster worker (re)starts).
The price: a new model needs a restart (a HUP re-forks workers from the same preloaded master).
"""
import atexit
import functools
import os
import shutil
import signal
import tempfile

# Before numpy is imported (preload imports it in this process, then forks): one BLAS thread per
# worker. The workers are the parallelism; a batch-1 matmul only loses from threading.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

# Prometheus multiprocess mode: every worker writes its metrics to mmap files in one directory.
# prometheus_client picks its storage when first imported, so this must come before the app import.
_prom_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
_reloading = bool(_prom_dir) and os.environ.get("_MNISTLITE_PROM_DIR") == _prom_dir  # re-read on HUP
if not _prom_dir:
    _prom_dir = tempfile.mkdtemp(prefix="mnistlite-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _prom_dir
    os.environ["_MNISTLITE_PROM_OWNED"] = "1"
elif not _reloading:
    os.makedirs(_prom_dir, exist_ok=True)
    # Stale files from an earlier run would add old counts to this one. Preloading happens after
    # this file is read, so cleaning here (not in on_starting) keeps the master's own files.
    for _f in os.listdir(_prom_dir):
        if _f.endswith(".db"):
            os.unlink(os.path.join(_prom_dir, _f))
os.environ["_MNISTLITE_PROM_DIR"] = _prom_dir
_own_prom_dir = os.environ.get("_MNISTLITE_PROM_OWNED") == "1"

_public_bind = os.environ.get("MNISTLITE_BIND") or f"0.0.0.0:{os.environ.get('PORT', '8000')}"
# /metrics and the full model description listen apart (service/admin.py), so that routing the public
# port (an Ingress on "/") never publishes them. A fixed port in the container; beside an explicit
# MNISTLITE_BIND (tests, benchmarks, several servers on one machine) a free one on the same host.
_metrics_bind = os.environ.get("MNISTLITE_METRICS_BIND") or (
    f"{_public_bind.rpartition(':')[0]}:0" if os.environ.get("MNISTLITE_BIND")
    else f"0.0.0.0:{os.environ.get('METRICS_PORT', '9102')}")
bind = [_public_bind, _metrics_bind]
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# gevent: a connection costs a greenlet while it waits for bytes, so slow, idle and speculative
# (browser) connections cannot occupy the workers the way they do with "sync", and keep-alive works.
# Requests stay CPU-bound and run one at a time per worker, as before. gthread was measured too: a
# thread that has read the first byte of a request head waits for the rest with no deadline, so
# trickling clients still take every thread.
# gevent patches the standard library in each worker after the fork; the preloaded app does no
# socket I/O of its own (gunicorn does it), so patching after preload is safe.
# service/worker.py: the gevent worker, answering what gunicorn cannot parse with the service's JSON 4xx.
worker_class = "service.worker.JSONErrorWorker"
worker_connections = int(os.environ.get("MNISTLITE_WORKER_CONNECTIONS", "1000"))
# The gevent worker bounds the wait for each request head (new or kept-alive connection) by keepalive.
keepalive = int(os.environ.get("MNISTLITE_IDLE_TIMEOUT", "5"))
_body_timeout = float(os.environ.get("MNISTLITE_BODY_TIMEOUT", "15"))
# One: a worker decodes one image at a time anyway, and a second photo buffered beside a decode would
# not leave two workers inside the chart's memory limit (docs/performance.md, "Slow clients, oversized
# bodies").
_upload_slots = int(os.environ.get("MNISTLITE_UPLOAD_SLOTS", "1"))
# Stalled bodies were held whole in memory however many arrived: 400 of just under 1 MiB grew workers
# by hundreds of MB (docs/performance.md, "Bodies in flight"). 32 MiB holds one photo at the body limit
# beside many small uploads.
_inflight_bytes = int(os.environ.get("MNISTLITE_INFLIGHT_BYTES", str(32 << 20)))
_discard_max_bytes = int(os.environ.get("MNISTLITE_DISCARD_MAX_BYTES", str(128 << 20)))
# A kept-alive connection stays with the worker that accepted it: workers publish how many they hold
# (service/handoff.py), and one above its share closes connections until the shares are even. A reconnect
# waits a turn or two of its worker's loop: closing every 100th answer put 1% of requests there, at the p99
# (docs/performance.md, "The tail at saturation").
_keepalive_requests = int(os.environ.get("MNISTLITE_KEEPALIVE_REQUESTS", "1000"))
# No peer may set the scheme or the script path through X-Forwarded-* headers (gunicorn trusts 127.0.0.1
# and ::1 by default): nothing here reads them, an Ingress reaches the pod from another address anyway,
# and gunicorn then skips matching the peer against the list on every request. A deployment behind a
# trusted local proxy can name it in FORWARDED_ALLOW_IPS.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "")
preload_app = True
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# A stopping worker (SIGTERM, or the old generation after a SIGHUP) serves what it accepted for this long.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
# The worker touches its heartbeat file about once a second: keep it in RAM when possible.
worker_tmp_dir = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
# The gunicornc control socket would live under $HOME (read-only in the container) and collide
# between several servers on one machine; nothing here uses it.
control_socket_disable = True
# The app writes one JSON access-log line per request itself (service/accesslog.py).
accesslog = None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")


def _limit_for(content_type: str) -> int:
    from service.parsing import body_limit
    from service.settings import Settings

    global _settings
    if _settings is None:
        _settings = Settings.from_env()
    return body_limit(content_type, _settings)


_settings = None


def _check_inflight_budget() -> None:
    # A body larger than the budget could never be received: refuse such a configuration at start.
    from service.settings import Settings

    try:
        settings = Settings.from_env()
    except ValueError:
        return  # service/wsgi.py stops with the one-line reason
    largest = max(settings.max_body_bytes, settings.max_json_bytes)
    if _inflight_bytes < largest:
        raise SystemExit(f"MNISTLITE_INFLIGHT_BYTES is {_inflight_bytes}, below the largest body limit "
                         f"({largest} bytes): raise it, or lower MNISTLITE_MAX_BODY_BYTES/_MAX_JSON_BYTES")


_check_inflight_budget()

# Made here, in the master, before any worker is forked (and anew on a reload, for the new generation).
from service.handoff import Board  # noqa: E402 - after the environment above is set

_board = Board()


def _gevent(worker) -> bool:
    # The hooks wait with gevent timers: with another worker class (``-k sync`` on the command line,
    # as benchmarks/bench_robustness.py does for its baseline) they stand aside.
    return _is_gevent(type(worker))


@functools.lru_cache(maxsize=8)
def _is_gevent(kind) -> bool:  # once per worker class, not on every request
    return any(c.__module__ == "gunicorn.workers.ggevent" for c in kind.__mro__)


@functools.cache
def _hooks():
    # Imported in the worker at its first request, as before, then kept: a ``from`` import of a
    # package's modules runs importlib's fromlist handling on every call.
    from service import connection, handoff

    return connection, handoff


def pre_request(worker, req):
    """Bound the body read and refuse an over-limit ``Expect: 100-continue`` (service/connection.py)."""
    if not _gevent(worker):
        return
    connection, handoff = _hooks()
    board, slot = getattr(worker, "handoff_board", None), getattr(worker, "handoff_slot", None)
    if handoff.should_close(req, board, slot, every=_keepalive_requests):
        req.force_close()

    connection.before_request(req, limit_for=_limit_for, body_timeout=_body_timeout,
                              upload_slots=_upload_slots, inflight_bytes=_inflight_bytes)


def post_request(worker, req, environ, resp):
    """Discard an unread body up to the cap after the answer, or close (service/connection.py)."""
    if not _gevent(worker):
        return
    _hooks()[0].after_request(req, discard_max_bytes=_discard_max_bytes)


def when_ready(server):
    """Tell the app which listener is the admin one (bound by now; the workers fork after this)."""
    from service import admin

    for listener in server.LISTENERS[1:]:  # in bind order: the public address first
        name = listener.sock.getsockname()
        admin.ADMIN_PORTS.add(name[1])
        server.log.info("Metrics and the full model description at http://%s:%s", name[0], name[1])


def on_starting(server):
    """Freeze the preloaded heap (after preload, before the first fork): the workers' collections skip it."""
    # Otherwise each worker's first full collection walks every object the master imported and writes
    # its GC header, copying nearly every shared page: a pause of a worker and its kept-alive
    # connections, and memory no longer shared (docs/performance.md, "The service").
    import gc

    gc.collect()
    gc.freeze()


def post_fork(server, worker):
    """Until the new worker installs its own handlers, a SIGTERM or SIGINT ends it at once."""
    # A forked worker keeps the master's Python signal handlers until gunicorn's init_signals, which the
    # gevent worker reaches only after monkey-patching. A stop signal landing in that window goes to the
    # worker's copy of the master's queue and is lost, and the master then waits the whole graceful
    # timeout before it kills the worker. A worker this young has accepted nothing, so dying is right.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)


def pre_fork(server, worker):
    """Give the new worker a slot on the board where workers count their connections (service/handoff.py)."""
    taken = {w.handoff_slot for w in server.WORKERS.values() if getattr(w, "handoff_board", None) is _board}
    worker.handoff_board, worker.handoff_slot = _board, _board.claim(taken)


def child_exit(server, worker):
    """Drop a dead worker's live gauges from the shared metrics directory, and its slot on the board."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, _prom_dir)
    board = getattr(worker, "handoff_board", None)
    if board is not None:  # the board of the worker's own generation (a reload makes a new one)
        board.release(worker.handoff_slot)


_master_pid = os.getpid()


def _remove_prom_dir():
    # atexit, not on_exit: also runs when the app fails to load; workers inherit the hook, hence the pid.
    if _own_prom_dir and os.getpid() == _master_pid:
        shutil.rmtree(_prom_dir, ignore_errors=True)


atexit.register(_remove_prom_dir)
