"""The per-request metric writes (service/metric_writes.py) leave the same exposition as prometheus_client's
own ``inc`` and ``observe``: bucket bounds hit exactly, values between, beyond the last bound, zero, NaN."""
from __future__ import annotations

import math
import os

import pytest
from prometheus_client import generate_latest

from mnistlite.drift import CONFIDENCE_EDGES
from service.prometheus_metrics import LATENCY_BUCKETS, Metrics

SECONDS = [0.0, 0.0003, *LATENCY_BUCKETS, 0.00051, 0.7, 2.5000001, 30.0]
CONFIDENCES = [0.0, 0.1, *CONFIDENCE_EDGES, 0.2999999, 0.9991, 1.0, math.nan]


def _metrics() -> Metrics:
    return Metrics("m", "v", "s", [784, 10], 10)


def _answers():
    out = []
    for i, conf in enumerate(CONFIDENCES):
        a = {"predicted_class": i % 10, "confidence": conf}
        if i % 3 == 0:
            a["warnings"] = ["noise"]
        if i % 4 == 1:
            a["abstain_reason"] = "unsure"
        out.append(a)
    return out


@pytest.mark.parametrize("kind", ["28x28", "photo", "array"])
def test_fast_writes_match_the_public_calls(kind):
    fast, public = _metrics(), _metrics()
    for i, s in enumerate(SECONDS):
        fast.observe(f"/r{i % 2}", str(200 + i % 3), s)
        public.requests.labels(f"/r{i % 2}", str(200 + i % 3)).inc()
        public.latency.labels(f"/r{i % 2}").observe(s)
    answers = _answers()
    fast.predicted(answers, kind)
    for a in answers:
        public.predictions.labels(str(a["predicted_class"])).inc()
        public.confidence.observe(a["confidence"])
        if "warnings" in a:
            public.warnings.inc()
        if "abstain_reason" in a:
            public._abstain[a["abstain_reason"]].inc()
    public._kind[kind].inc(len(answers))
    assert generate_latest(fast.registry) == generate_latest(public.registry)


_SCRIPT = r"""
import os, sys
from prometheus_client import CollectorRegistry, generate_latest, multiprocess
from service.prometheus_metrics import Metrics
fast = sys.argv[1] == "fast"
m = Metrics("m", "v", "s", [784, 10], 10, multiprocess_dir=os.environ["PROMETHEUS_MULTIPROC_DIR"])

def write(n):
    for i in range(n):
        conf = [0.5, 0.95, 0.999, 1.0, 0.0][i % 5]
        if fast:
            m.observe("/predict", "200", 0.001 * i)
            m.predicted([{"predicted_class": i % 10, "confidence": conf}], "28x28")
        else:
            m.requests.labels("/predict", "200").inc()
            m.latency.labels("/predict").observe(0.001 * i)
            m.predictions.labels(str(i % 10)).inc()
            m.confidence.observe(conf)
            m._kind["28x28"].inc(1)

write(7)          # in the parent, like a preloaded app's warm-up
pid = os.fork()   # a gunicorn worker
if pid == 0:
    write(5)
    os._exit(0)
os.waitpid(pid, 0)
write(3)
reg = CollectorRegistry()
multiprocess.MultiProcessCollector(reg, path=os.environ["PROMETHEUS_MULTIPROC_DIR"])
sys.stdout.write(generate_latest(reg).decode())
"""


def test_multiprocess_files_and_forks_match_the_public_calls(tmp_path):
    import subprocess
    import sys

    out = {}
    for mode in ("fast", "public"):
        d = tmp_path / mode
        d.mkdir()
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(d)}
        out[mode] = subprocess.run([sys.executable, "-c", _SCRIPT, mode], env=env, check=True,
                                   capture_output=True, text=True).stdout
    assert 'mnistlite_http_requests_total{route="/predict",status="200"} 15.0' in out["fast"]
    assert sorted(out["fast"].splitlines()) == sorted(out["public"].splitlines())   # family order varies
