"""Where a request's time goes under load: connections per worker, CPU, run-queue wait and GC pauses.

Usage: python benchmarks/bench_tail.py CONCURRENCY SECONDS [gunicorn flags...]
Environment: MODEL (a .npz), ROOT (the checkout to serve, default this one), BASE (its gunicorn config),
and the service's own (MNISTLITE_KEEPALIVE_REQUESTS, ...). Starts gunicorn with
benchmarks/tail_probe_conf.py (the config plus GC timing), drives wrk --latency with
benchmarks/wrk_multipart.lua, samples `ss -tnp` each second and reads /proc/PID/stat and schedstat.
"""
import collections
import glob
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

import loadgen  # benchmarks/ is sys.path[0] when run as a script

here = os.path.dirname(os.path.abspath(__file__))
root = os.environ.get("ROOT", os.path.dirname(here))
conf = os.path.join(here, "tail_probe_conf.py")
conc, dur = int(sys.argv[1]), int(sys.argv[2])
extra = sys.argv[3:]
out_dir = tempfile.mkdtemp(prefix="mnistlite-tail-")


def worker_stat(pid):
    """(utime+stime ticks, ns on CPU, ns waiting on a run queue, time slices) of a process."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    sched = open(f"/proc/{pid}/schedstat").read().split()
    return int(fields[11]) + int(fields[12]), int(sched[0]), int(sched[1]), int(sched[2])


def main():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    env = dict(os.environ, MNISTLITE_BIND=f"127.0.0.1:{port}", MNISTLITE_MODEL=os.environ["MODEL"],
               PERF_OUT=out_dir, GUNICORN_LOGLEVEL="warning",
               PERF_BASE_CONF=os.environ.get("BASE", f"{root}/service/gunicorn.conf.py"))
    proc = subprocess.Popen([f"{root}/.venv/bin/gunicorn", "-c", conf, *extra, "service.wsgi:app"], cwd=root,
                            env=env, stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(out_dir, "gunicorn.err"), "w"))
    loadgen.wait_ready(proc, port, loadgen.ready_probe(port), time.perf_counter(), 60,
                       "gunicorn did not become ready")
    time.sleep(0.5)
    kids = [int(x) for x in open(f"/proc/{proc.pid}/task/{proc.pid}/children").read().split()]
    before = {k: worker_stat(k) for k in kids}
    wrk = subprocess.Popen(["wrk", "-t1", f"-c{conc}", f"-d{dur}s", "--latency", "-s",
                            f"{root}/benchmarks/wrk_multipart.lua", f"http://127.0.0.1:{port}/predict"],
                           cwd=root, stdout=subprocess.PIPE, text=True,
                           env=dict(os.environ, MNISTLITE_BENCH_PNG=f"{root}/tests/data/digit_7.png"))
    samples = []
    time.sleep(1)
    for _ in range(min(3, dur - 1)):
        out = subprocess.run(["ss", "-tnpH", "state", "established", f"sport = :{port}"],
                             capture_output=True, text=True).stdout
        count = collections.Counter(int(m) for m in re.findall(r"pid=(\d+)", out))
        samples.append({k: count.get(k, 0) for k in kids})
        time.sleep(1)
    out = wrk.communicate()[0]
    after = {k: worker_stat(k) for k in kids}
    hz = os.sysconf("SC_CLK_TCK")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = dict(re.findall(r"\s(50|99)(?:\.000)?%\s+(\S+)", out))
    errs = re.search(r"Non-2xx.*|Socket errors.*", out)
    print(f"c{conc} rps {rps:.0f} p50 {lat.get('50')} p99 {lat.get('99')} {errs.group(0) if errs else ''}")
    total = 0
    for k in kids:
        cpu = (after[k][0] - before[k][0]) / hz
        wait = (after[k][2] - before[k][2]) / 1e9
        slices = after[k][3] - before[k][3]
        total += cpu
        print(f"  worker {k}: connections {[s_[k] for s_ in samples]} cpu {cpu:.2f}s "
              f"run-queue wait {wait:.2f}s "
              f"({wait / max(slices, 1) * 1e3:.2f} ms a slice over {slices})")
    print(f"  worker cpu a request {total / (rps * dur) * 1e6:.0f} us")
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    for f in sorted(glob.glob(os.path.join(out_dir, "gc-*.json"))):
        g = sorted(json.load(open(f)))
        if g:
            print(f"  gc {os.path.basename(f)[3:-5]}: {len(g)} collections, max {g[-1]:.2f} ms, "
                  f"total {sum(g):.0f} ms")
    print("  load average", " ".join(open("/proc/loadavg").read().split()[:3]))


if __name__ == "__main__":
    main()
