"""Weight averaging over the end of a fit (stochastic weight averaging): the mean of the parameters taken
every few optimizer steps over the last epochs, which the model keeps instead of its last step's weights.

The averaged weights sit in a wider, flatter part of the loss surface than any single step's, at no cost
at inference. It is opt-in (``TrainConfig.average``); the default recipe does not use it.
"""
from __future__ import annotations

import numpy as np

EVERY = 4   # optimizer steps between snapshots: cheap (one add over the flat parameters) yet many snapshots


class WeightAverage:
    """Running sum of ``params`` snapshots from optimizer step ``start`` (counting from 1) on, every ``every``
    steps; ``finish`` adds the last step's weights if they were not taken and writes the mean into params.

    params: the model's flat float32 parameter vector (updated in place by the optimizer).
    """

    def __init__(self, params: np.ndarray, start: int, every: int = EVERY):
        if start < 1 or every < 1:
            raise ValueError(f"start and every must be >= 1, got {start!r}, {every!r}")
        self.params, self.start, self.every = params, int(start), int(every)
        self.sum = np.zeros(params.shape, dtype=np.float64)
        self.n, self.t, self._last = 0, 0, 0

    def step(self):
        """Call after each optimizer step."""
        self.t += 1
        if self.t >= self.start and (self.t - self.start) % self.every == 0:
            self.sum += self.params
            self.n, self._last = self.n + 1, self.t

    def finish(self) -> int:
        """Put the average into ``params``; returns the number of snapshots averaged (0: nothing changed)."""
        if self.t >= self.start and self._last != self.t:
            self.sum += self.params
            self.n += 1
        if self.n:
            self.params[...] = (self.sum / self.n).astype(np.float32)
        return self.n
