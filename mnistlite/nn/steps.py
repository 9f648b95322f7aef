"""The order of a fit's steps: its shuffled mini-batches and the learning rate of each step."""
from __future__ import annotations

from .optim import schedule_fn
from .rng import as_generator


def minibatches(x, y, batch_size: int, rng):
    """One shuffled epoch of (xb, yb) batches: a seeded permutation of the rows cut into ``batch_size``
    slices (the last may be shorter). ``rng`` is a seed or numpy Generator; it draws once per epoch."""
    order = as_generator(rng).permutation(len(x))
    for start in range(0, len(x), batch_size):
        idx = order[start:start + batch_size]
        yield x.take(idx, axis=0), y.take(idx)


def epoch_batches(x, y, batch_size: int, rng, hook=None):
    """One epoch's finished batches: ``minibatches``, each through ``hook(xb, yb, rng)`` when given, in
    the order ``MLP.fit`` draws them (the permutation first, then each batch's hook draws in turn)."""
    for xb, yb in minibatches(x, y, batch_size, rng):
        yield (xb, yb) if hook is None else hook(xb, yb, rng)


class InProcessBatches:
    """``MLP.fit``'s default batch source: each epoch's ``epoch_batches`` made in this process, between
    steps (``producer.ProcessBatches`` makes the same ones in another process)."""

    kind = "in-process"

    def __init__(self, x, y, batch_size: int, rng, hook, epochs: int):
        self._args = (x, y, batch_size, rng, hook)

    def epoch(self):
        return epoch_batches(*self._args)

    def close(self):
        pass


def learning_rates(lr: float, schedule: str, total_steps: int):
    """The learning rate of each step in turn: ``lr`` scaled by ``schedule`` over ``total_steps`` steps."""
    scale = schedule_fn(schedule)  # looked up now, so a bad name fails before training starts
    return (lr * scale(step, total_steps) for step in range(total_steps))
