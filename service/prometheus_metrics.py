"""Prometheus metrics: requests by route and status, latency, predictions by class, abstentions by reason,
model info.

Under gunicorn ``PROMETHEUS_MULTIPROC_DIR`` is set (by gunicorn.conf.py, before prometheus_client is
imported) and every worker writes its values to mmap files there; a scrape of any worker merges them.
Without it (tests, a single process) the app keeps its own plain registry.
"""
from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)

# The *_created series double the scrape for no use here (and multiprocess mode omits them anyway).
disable_created_metrics()

# Buckets resolve below a millisecond, where single-image predictions fall (docs/performance.md).
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
CONTENT_TYPE = CONTENT_TYPE_LATEST
ABSTAIN_REASONS = ("not_a_digit", "unsure")


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
        self.abstentions = Counter("mnistlite_abstentions", "Answers that abstained, by reason "
                                   "(not_a_digit, unsure).", ("reason",), registry=reg)
        self._abstain = {r: self.abstentions.labels(r) for r in ABSTAIN_REASONS}
        info = Gauge("mnistlite_model_info", "The served model (value 1).",
                     ("name", "version", "sha256", "layer_sizes"), registry=reg, multiprocess_mode="max")
        info.labels(model_name, version, sha256, "-".join(map(str, layer_sizes))).set(1)
        # Every class from the start, so a scrape shows each class's count, zeros included.
        self._by_class = [self.predictions.labels(str(c)) for c in range(n_classes)]
        # Label children kept once made: .labels() locks and builds a key on every call.
        self._req = {}
        self._lat = {}

    def observe(self, route: str, status: str, seconds: float) -> None:
        """Count one finished request and its latency."""
        key = (route, status)
        child = self._req.get(key)
        if child is None:
            child = self._req[key] = self.requests.labels(route, status)
        child.inc()
        lat = self._lat.get(route)
        if lat is None:
            lat = self._lat[route] = self.latency.labels(route)
        lat.observe(seconds)

    def predicted(self, answers) -> None:
        """Count the classes (and warnings and abstentions) of a list of answer dicts."""
        for a in answers:
            self._by_class[a["predicted_class"]].inc()
            if "warnings" in a:
                self.warnings.inc()
            if a.get("abstain"):
                self._abstain[a["abstain_reason"]].inc()

    def render(self) -> bytes:
        """The Prometheus text exposition of all workers (multiprocess) or of this app."""
        if self.multiprocess_dir:
            reg = CollectorRegistry()
            multiprocess.MultiProcessCollector(reg, path=self.multiprocess_dir)
            return generate_latest(reg)
        return generate_latest(self.registry)


def multiprocess_dir() -> str | None:
    """The multiprocess directory when it is configured and usable, else None (plain registry)."""
    d = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return d if d and os.path.isdir(d) else None
