"""Metrics updates the values behind its busiest children directly: what a scrape shows must be what
prometheus_client's own Counter.inc and Histogram.observe would have made of the same requests."""
from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap

from hypothesis import given, settings
from hypothesis import strategies as st

from mnistlite.drift import CONFIDENCE_EDGES
from service.prometheus_metrics import INPUT_KINDS, LATENCY_BUCKETS, Metrics

_EDGES = sorted({*CONFIDENCE_EDGES, *LATENCY_BUCKETS})
_AMOUNT = (st.sampled_from([*_EDGES, 0.0, -1.0, math.inf, -math.inf, math.nan])
           | st.floats(-0.1, 3.0) | st.floats(0.0, 1.0).map(lambda v: round(v, 6)))
_ANSWER = st.fixed_dictionaries({"predicted_class": st.integers(0, 9), "confidence": _AMOUNT})
_STEP = st.one_of(
    st.tuples(st.just("predicted"), st.lists(_ANSWER, max_size=4), st.sampled_from(INPUT_KINDS)),
    st.tuples(st.just("observe"), st.sampled_from(["/predict", "/v1/model"]), st.sampled_from(["200", "415"]),
              _AMOUNT))


def _metrics() -> Metrics:
    return Metrics("m", "v1", "ab" * 32, [784, 10], 10)


def _reference(m: Metrics, steps) -> None:
    """The same steps through prometheus_client's public API on ``m``'s families."""
    for step in steps:
        if step[0] == "predicted":
            _, answers, kind = step
            for a in answers:
                m.predictions.labels(str(a["predicted_class"])).inc()
                m.confidence.observe(a["confidence"])
            m._kind[kind].inc(len(answers))
        else:
            _, route, status, seconds = step
            m.requests.labels(route, status).inc()
            m.latency.labels(route).observe(seconds)


def _apply(m: Metrics, steps) -> None:
    for step in steps:
        if step[0] == "predicted":
            m.predicted(step[1], step[2])
        else:
            m.observe(*step[1:])


@settings(max_examples=200, deadline=None)
@given(st.lists(_STEP, max_size=12))
def test_a_scrape_shows_what_prometheus_client_would_have_counted(steps):
    served, reference = _metrics(), _metrics()
    _apply(served, steps)
    _reference(reference, steps)
    assert served.render() == reference.render()


def test_the_same_holds_in_multiprocess_mode(tmp_path):
    # under gunicorn every value lives in an mmap file: a separate process, as the directory must be set
    # before prometheus_client is imported
    code = textwrap.dedent(f"""
        import math, sys
        sys.path[:0] = {sys.path!r}
        from tests.service.test_metric_values import _apply, _reference, _metrics
        steps = [("predicted", [{{"predicted_class": c % 10, "confidence": v}}], "28x28")
                 for c, v in enumerate([0.3, 0.999, 1.0, 0.4, math.nan, 0.9951, 0.0])]
        steps += [("observe", "/predict", "200", s) for s in (0.0004, 0.0005, 0.7, 9.0)]
        served = _metrics()
        _apply(served, steps)
        first = served.render()
        _reference(served, steps)     # the same again through the public API: every count doubles
        second = served.render()
        assert b"mnistlite_confidence_bucket" in first and first != second
        doubled = {{}}
        for text, scale in ((first, 2), (second, 1)):
            for line in text.decode().splitlines():
                if line.startswith(("mnistlite_http", "mnistlite_predictions", "mnistlite_confidence",
                                    "mnistlite_inputs")):   # the counts (gauges are set, not added to)
                    name, value = line.rsplit(" ", 1)
                    doubled.setdefault(name, []).append(float(value) * scale)
        bad = [k for k, (a, b) in doubled.items() if not (a == b or (math.isnan(a) and math.isnan(b)))]
        assert not bad, bad
    """)
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
