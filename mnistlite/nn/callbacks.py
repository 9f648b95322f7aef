"""Callbacks for ``MLP.fit``: called as ``cb(record, model)`` after every epoch; a true return stops training.

``record`` is the epoch's dict (epoch, loss, acc, val_loss, val_acc, lr, seconds); every callback sees
every epoch. A callback may also define ``on_train_end(model)``, which fit calls once when it finishes,
stopped early or not. A plain function is a callback too.
"""
from __future__ import annotations

import numpy as np


class EarlyStopping:
    """Stop after ``patience`` epochs without a lower validation loss, then restore the best weights.

    The best weights are a copy of ``model.flat_params``, taken at the epoch with the lowest ``val_loss``.
    """

    def __init__(self, patience: int):
        if patience < 1:
            raise ValueError(f"patience must be >= 1, got {patience!r}")
        self.patience = int(patience)
        self._reset()

    def _reset(self):
        self.best_loss, self.best_params, self.bad_epochs = np.inf, None, 0

    def __call__(self, record: dict, model) -> bool:
        if record["val_loss"] is None:
            raise ValueError("early stopping needs validation data: pass validation_data to fit")
        if record["val_loss"] < self.best_loss:
            self.best_loss, self.bad_epochs = record["val_loss"], 0
            self.best_params = model.flat_params.copy()
            return False
        self.bad_epochs += 1
        return self.bad_epochs >= self.patience

    def on_train_end(self, model):
        """Put the best epoch's weights back into ``model``; the instance is then ready for another fit."""
        if self.best_params is not None:
            model.flat_params[...] = self.best_params
        self._reset()
