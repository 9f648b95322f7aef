"""Prometheus metrics: requests by route and status, latency, predictions by class, model info, and
what drifts: confidence, abstentions by reason, input kinds, the model's age, the drift PSI
(docs/monitoring.md).

Under gunicorn ``PROMETHEUS_MULTIPROC_DIR`` is set (by gunicorn.conf.py, before prometheus_client is
imported) and every worker writes its values to mmap files there; a scrape of any worker merges them.
Without it (tests, a single process) the app keeps its own plain registry.
"""
from __future__ import annotations

import datetime as _dt
import os
from bisect import bisect_left

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
    values,
)

from mnistlite.drift import CONFIDENCE_EDGES, SlidingMix

# The *_created series double the scrape for no use here (and multiprocess mode omits them anyway).
disable_created_metrics()

_pid = [os.getpid()]
os.register_at_fork(after_in_child=lambda: _pid.__setitem__(0, os.getpid()))


def process_id() -> int:
    """This process's id, kept from its start or its fork: no system call."""
    return _pid[0]


# In multiprocess mode every value update asks for the process id, to notice a fork and write to the
# child's own file (prometheus_client's documented ``process_identifier`` hook); os.getpid is a system
# call each time, several per request. The id kept above changes exactly at a fork.
if values.ValueClass is not values.MutexValue:
    values.ValueClass = values.MultiProcessValue(process_identifier=process_id)

# Buckets resolve below a millisecond, where single-image predictions fall (docs/performance.md).
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
CONTENT_TYPE = CONTENT_TYPE_LATEST
ABSTAIN_REASONS = ("not_a_digit", "unsure")   # any other reason is counted as "other"
INPUT_KINDS = ("28x28", "larger", "photo", "array")
DRIFT_WINDOW = 1000   # answers per worker the drift PSI is computed over
DRIFT_MIN = 200       # answers a worker must have seen before it exports a PSI
DRIFT_EVERY = 50      # answers between two PSI computations (a few microseconds each)


def input_kind(info: dict) -> str:
    """The input kind of an image as ``preprocess_image(..., info=info)`` saw it: "28x28" (MNIST's own
    size), "photo" (a picture cleaned before reading: uneven background) or "larger"."""
    if tuple(info.get("size", ())) == (28, 28):
        return "28x28"
    return "photo" if info.get("path") in ("photo", "scan") else "larger"


class Metrics:
    """The service's metric families; ``observe`` runs once per request, on the measured path
    (``benchmarks/bench_service.py --breakdown``, stage "metrics observe+predicted").

    Route labels are URI templates (never raw paths), so label cardinality stays bounded.
    """

    def __init__(self, model_name: str, version: str, sha256: str, layer_sizes, n_classes: int,
                 *, multiprocess_dir: str | None = None):
        self.multiprocess_dir = multiprocess_dir
        # In multiprocess mode the collectors must not be registered anywhere: scrapes read the files.
        reg = None if multiprocess_dir else CollectorRegistry()
        self.registry = reg
        self.requests = Counter("mnistlite_http_requests", "HTTP requests by route and status.",
                                ("route", "status"), registry=reg)
        self.latency = Histogram("mnistlite_http_request_duration_seconds", "Request latency by route.",
                                 ("route",), buckets=LATENCY_BUCKETS, registry=reg)
        self.predictions = Counter("mnistlite_predictions", "Predicted digits by class.", ("class",),
                                   registry=reg)
        self.warnings = Counter("mnistlite_input_warnings", "Inputs the corruption detector flagged.",
                                registry=reg)
        info = Gauge("mnistlite_model_info", "The served model (value 1).",
                     ("name", "version", "sha256", "layer_sizes"), registry=reg, multiprocess_mode="max")
        info.labels(model_name, version, sha256, "-".join(map(str, layer_sizes))).set(1)
        # Every class from the start, so a scrape shows each class's count, zeros included.
        self._by_class = [self.predictions.labels(str(c)) for c in range(n_classes)]
        self.confidence = Histogram("mnistlite_confidence", "Confidence of each served answer.",
                                    buckets=CONFIDENCE_EDGES, registry=reg)
        # The values behind the children updated on every request: Counter.inc and Histogram.observe
        # check labels and amount and scan the bounds in Python before the same value updates.
        self._class_values = [child._value for child in self._by_class]
        self._confidence = _HistogramValues(self.confidence)
        abstentions = Counter("mnistlite_abstentions", "Answers that abstained, by reason.", ("reason",),
                              registry=reg)
        self._abstain = {r: abstentions.labels(r) for r in (*ABSTAIN_REASONS, "other")}
        inputs = Counter("mnistlite_inputs", "Inputs by kind, as the preprocessing saw them.", ("kind",),
                         registry=reg)
        self._kind = {k: inputs.labels(k) for k in INPUT_KINDS}
        self.created = Gauge("mnistlite_model_created_timestamp_seconds",
                             "When the served model was trained (Unix time).", registry=reg,
                             multiprocess_mode="max")
        self.ready = Gauge("mnistlite_ready", "1 when the model passed its start-up self-test.",
                           registry=reg, multiprocess_mode="max")
        # Per worker (livemax: the worst live worker's window); made only with a training reference.
        self.psi = Gauge("mnistlite_drift_psi", "PSI of the last answers' mix against the model's "
                         "training reference, by signal (class, confidence).", ("signal",), registry=reg,
                         multiprocess_mode="livemax")
        self.drift: SlidingMix | None = None
        self._psi_children: dict = {}
        self._since = 0   # answers since the last PSI computation
        # Label children kept once made: .labels() locks and builds a key on every call.
        self._req = {}
        self._lat = {}

    def observe(self, route: str, status: str, seconds: float) -> None:
        """Count one finished request and its latency."""
        key = (route, status)
        value = self._req.get(key)
        if value is None:
            value = self._req[key] = self.requests.labels(route, status)._value
        value.inc(1)
        lat = self._lat.get(route)
        if lat is None:
            lat = self._lat[route] = _HistogramValues(self.latency.labels(route))
        lat.observe(seconds)

    def watch(self, predictor, ready: bool = True) -> None:
        """Export the model's creation time and readiness, and start the drift window when the model file
        holds a training reference (older files do not: no ``mnistlite_drift_psi`` then)."""
        self.ready.set(1 if ready else 0)
        created = (predictor.describe() or {}).get("created")
        try:
            self.created.set(_dt.datetime.fromisoformat(created).timestamp())
        except (TypeError, ValueError):
            pass   # a model without a creation time: no age gauge
        meta = getattr(getattr(predictor, "model", None), "metadata", None) or {}
        ref = meta.get("drift_reference")
        if ref and len(ref.get("classes", ())) == len(self._by_class):
            self.drift = SlidingMix(ref, DRIFT_WINDOW)

    def predicted(self, answers, kind: str = "array") -> None:
        """Count the classes, confidences, warnings and abstentions of a list of answer dicts, their
        input ``kind`` (one of INPUT_KINDS), and slide the drift window."""
        drift, by_class, confidence = self.drift, self._class_values, self._confidence
        for a in answers:
            c = a["predicted_class"]
            by_class[c].inc(1)
            confidence.observe(a["confidence"])
            if "warnings" in a:
                self.warnings.inc()
            reason = a.get("abstain_reason")
            if reason is not None:
                self._abstain.get(reason, self._abstain["other"]).inc()
            if drift is not None:
                drift.add(c, a["confidence"])
        self._kind[kind]._value.inc(len(answers))
        if drift is not None and drift.count >= DRIFT_MIN:
            self._since += len(answers)
            if self._since >= DRIFT_EVERY or not self._psi_children:
                self._since = 0
                for signal, value in drift.psi().items():
                    child = self._psi_children.get(signal)
                    if child is None:
                        child = self._psi_children[signal] = self.psi.labels(signal)
                    child.set(value)

    def render(self) -> bytes:
        """The Prometheus text exposition of all workers (multiprocess) or of this app."""
        if self.multiprocess_dir:
            reg = CollectorRegistry()
            multiprocess.MultiProcessCollector(reg, path=self.multiprocess_dir)
            return generate_latest(reg)
        return generate_latest(self.registry)


class _HistogramValues:
    """``observe`` as a prometheus_client Histogram (child) does it, on its values directly: the sum, then
    the first bucket whose bound is >= the amount (none for NaN)."""

    __slots__ = ("_sum", "_buckets", "_edges")

    def __init__(self, histogram):
        # the finite bounds; an amount above them all lands in the last bucket, +Inf
        self._sum, self._buckets = histogram._sum, histogram._buckets
        self._edges = tuple(histogram._upper_bounds[:-1])

    def observe(self, amount: float) -> None:
        self._sum.inc(amount)
        if amount == amount:
            self._buckets[bisect_left(self._edges, amount)].inc(1)


def multiprocess_dir() -> str | None:
    """The multiprocess directory when it is configured and usable, else None (plain registry)."""
    d = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return d if d and os.path.isdir(d) else None
