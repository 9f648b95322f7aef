"""The per-request metric writes, without prometheus_client's per-call checks (service/prometheus_metrics.py).

``Counter.inc`` checks that the metric is observable and the amount is not negative before it reaches its
value; ``Histogram.observe`` does the same and then walks its buckets one by one; in multiprocess mode (under
gunicorn) the value then takes a lock and asks the kernel for the process id, to notice a fork, before it
writes its file. On /predict a request makes 7 such writes, each checked anew although the children were
made once, the amounts here are counts and non-negative seconds or probabilities, and a worker's requests
run in one thread (the library's own lock presumes no threads in multiprocess mode). These helpers go
straight to the same value objects (prometheus_client pinned in requirements/runtime.txt), so the files a
scrape reads hold the same numbers; the first write after a fork takes the library's path, which moves
every value to the new process's file (tests/service/test_metric_writes.py).
"""
from __future__ import annotations

import os
from bisect import bisect_left

_forked = [False]   # set in a fresh child process until its first write
os.register_at_fork(after_in_child=lambda: _forked.__setitem__(0, True))


def adder(counter_child):
    """``counter_child.inc`` for amounts >= 0."""
    return _value_adder(counter_child._value)


def _value_adder(v):
    """``v.inc`` for one value of a metric child (a counter's, a histogram's sum or bucket)."""
    if not getattr(v, "_multiprocess", False):
        return v.inc   # a plain registry's value (tests, one process): its own inc

    def inc(amount):
        if _forked[0]:   # the library notices the new process id and moves the values to its file
            _forked[0] = False
            v.inc(amount)
            return
        v._value += amount
        v._timestamp = 0.0
        v._file.write_value(v._key, v._value, 0.0)
    return inc


class Observer:
    """``histogram_child.observe(amount)``: the sum, then the first bucket whose bound is >= amount (a
    bisection, the same bucket the linear walk finds); a NaN takes the library's own path."""

    __slots__ = ("_sum", "_bounds", "_buckets", "_slow")

    def __init__(self, histogram_child):
        self._sum = _value_adder(histogram_child._sum)
        self._bounds = list(histogram_child._upper_bounds)
        self._buckets = [_value_adder(b) for b in histogram_child._buckets]
        self._slow = histogram_child.observe

    def __call__(self, amount: float) -> None:
        if amount != amount:   # NaN: the linear walk finds no bucket; bisection would pick the first
            self._slow(amount)
            return
        self._sum(amount)
        self._buckets[bisect_left(self._bounds, amount)](1)

