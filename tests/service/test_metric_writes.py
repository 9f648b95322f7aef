"""The per-request metric writes (service/metric_writes.py) leave the same exposition as prometheus_client's
own ``inc`` and ``observe``: bucket bounds hit exactly, values between, beyond the last bound, zero, NaN."""
from __future__ import annotations

import math

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
