"""The per-request metric writes, without prometheus_client's per-call checks (service/prometheus_metrics.py).

``Counter.inc`` checks that the metric is observable and the amount is not negative before it reaches its
value; ``Histogram.observe`` does the same and then walks its buckets one by one. On /predict a request
makes 7 such writes, each checked anew although the children were made once and the amounts here are
counts and non-negative seconds or probabilities. These helpers go straight to the same value objects
(prometheus_client pinned in requirements/runtime.txt), so the files a scrape reads hold the same numbers
(tests/service/test_metric_writes.py checks the exposition against the public calls).
"""
from __future__ import annotations

from bisect import bisect_left


def adder(counter_child):
    """``counter_child.inc`` for amounts >= 0: its value's ``inc(amount)``."""
    return counter_child._value.inc


class Observer:
    """``histogram_child.observe(amount)``: the sum, then the first bucket whose bound is >= amount (a
    bisection, the same bucket the linear walk finds); a NaN takes the library's own path."""

    __slots__ = ("_sum", "_bounds", "_buckets", "_slow")

    def __init__(self, histogram_child):
        self._sum = histogram_child._sum.inc
        self._bounds = list(histogram_child._upper_bounds)
        self._buckets = [b.inc for b in histogram_child._buckets]
        self._slow = histogram_child.observe

    def __call__(self, amount: float) -> None:
        if amount != amount:   # NaN: the linear walk finds no bucket; bisection would pick the first
            self._slow(amount)
            return
        self._sum(amount)
        self._buckets[bisect_left(self._bounds, amount)](1)
