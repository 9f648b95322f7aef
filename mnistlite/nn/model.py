"""MLP: a stack of Dense + activation (+ dropout) layers ending in softmax; fit, predict, predict_proba."""
from __future__ import annotations

import math
import time

import numpy as np

from .arrays import to_model_input
from .averaging import WeightAverage
from .calibration import Calibration, calibrated_proba
from .callbacks import EarlyStopping
from .config import TrainConfig
from .inked import inked_product, pixel_product
from .layers import ACTIVATIONS, Activation, Dense, Dropout
from .losses import SoftmaxCrossEntropy
from .optim import Optimizer, make_optimizer
from .rng import as_generator
from .steps import InProcessBatches, learning_rates

F32 = np.float32
_PREDICT_CHUNK = 4096  # rows per block in predict_proba: bounds memory for big inputs
# Up to this many rows (a service request), the first layer reads only the weight rows of inked pixels.
_INKED_ROWS = 8


class TrainingDiverged(FloatingPointError):
    """A fit stopped because its loss or weights became non-finite (NaN or inf)."""


class MLP:
    """Multi-layer perceptron for k-class classification.

    ``layer_sizes`` such as [784, 128, 10]; [784, 10] is softmax regression. All parameters are
    views into one flat float32 vector (``self.flat_params``) so optimizers update them in one go.
    """

    def __init__(self, layer_sizes, *, activation: str = "relu", dropout: float = 0.0, seed=0,
                 config: TrainConfig | None = None, init: str | None = None):
        sizes = [int(s) for s in layer_sizes]
        if len(sizes) < 2 or any(s < 1 for s in sizes):
            raise ValueError(f"layer_sizes must list >= 2 positive sizes, got {layer_sizes!r}")
        self.layer_sizes = sizes
        self.activation = activation
        self._seed, self._rng = seed, None
        self.config = config
        # set after training (recipe.calibrate) or by mnistlite.load: the temperature and reject thresholds
        self.calibration: Calibration | None = None
        self.metadata: dict = {}
        self.sha256: str | None = None  # set by mnistlite.load: the model file's hash
        init = init or ("he" if activation == "relu" else "glorot")
        self.layers, self.dense = [], []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            d = Dense(n_in, n_out, init=init, rng=None if init == "zeros" else self.rng)
            self.layers.append(d)
            self.dense.append(d)
            if i < len(sizes) - 2:
                self.layers.append(Activation(activation))
                if dropout:
                    self.layers.append(Dropout(dropout, rng=self.rng))
        self.dense[0].needs_input_grad = False
        # logits() applies the activation's in-place maths itself: it must not touch the layers' caches
        self._act = ACTIVATIONS[activation][0] if len(self.dense) > 1 else None
        self._flatten()
        self.loss = SoftmaxCrossEntropy()
        self.weight_decay = 0.0  # coupled L2 (added to the loss); AdamW decays separately

    @property
    def rng(self) -> np.random.Generator:
        """The model's generator (init, shuffling, dropout, shifts); made on first use from the seed."""
        if self._rng is None:
            self._rng = as_generator(self._seed)
        return self._rng

    def _flatten(self):
        """Move every W, b (and dW, db) into one contiguous vector and make the layers views of it."""
        n = sum(p.size for d in self.dense for p in d.params)
        self.flat_params = np.empty(n, dtype=F32)
        self.flat_grads = np.zeros(n, dtype=F32)
        at = 0
        for d in self.dense:
            for name in ("W", "b"):
                arr = getattr(d, name)
                view = self.flat_params[at:at + arr.size].reshape(arr.shape)
                view[...] = arr
                setattr(d, name, view)
                setattr(d, "d" + name, self.flat_grads[at:at + arr.size].reshape(arr.shape))
                at += arr.size

    # ---- inference -------------------------------------------------------------------------
    @property
    def weights(self):
        """[(W, b), ...] per dense layer: W (n_in, n_out) float32, b (n_out,) float32."""
        return [(d.W, d.b) for d in self.dense]

    def logits(self, x):
        """Raw scores: x float32 (n, 784) -> (n, k) float32, or one image's uint8 pixels (784,) -> (1, k).
        No caching, safe across threads."""
        first, *rest = self.dense
        if x.ndim == 1 and x.dtype == np.uint8:
            h = pixel_product(x, first.W)
        else:
            h = inked_product(x, first.W) if x.shape[0] <= _INKED_ROWS else x @ first.W
        h += first.b
        for d in rest:
            self._act(h)
            h = h @ d.W
            h += d.b
        return h

    def predict_proba(self, x, *, calibrated: bool = True):
        """Class probabilities: x float32 (n, 784) in [0, 1] (or uint8 (n, 28, 28)) -> (n, k) float32.

        With a ``calibration`` (and ``calibrated``) they are softmax(logits / temperature)."""
        x = to_model_input(x, self.layer_sizes[0])
        cal = self.calibration if calibrated else None
        if x.shape[0] <= _PREDICT_CHUNK:
            return calibrated_proba(self.logits(x), cal)
        return np.concatenate([calibrated_proba(self.logits(x[i:i + _PREDICT_CHUNK]), cal)
                               for i in range(0, x.shape[0], _PREDICT_CHUNK)])

    def raw_logits(self, x):
        """``logits`` of any number of rows, a block at a time: x as for ``predict_proba`` -> (n, k)
        float32."""
        x = to_model_input(x, self.layer_sizes[0])
        parts = [self.logits(x[i:i + _PREDICT_CHUNK]) for i in range(0, max(x.shape[0], 1), _PREDICT_CHUNK)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def predict_scores(self, x):
        """(calibrated probabilities (n, k) float32, largest raw logit (n,) float32): what the reject rule
        (``calibration.decide``) reads. x as for ``predict_proba``; one uint8 image goes to ``logits`` as
        pixels."""
        if type(x) is np.ndarray and x.dtype == np.uint8 and x.size == self.layer_sizes[0]:
            z = self.logits(x.reshape(-1))
        else:
            small = type(x) is np.ndarray and x.dtype == F32 and x.ndim == 2 and 0 < len(x) <= _PREDICT_CHUNK
            z = self.logits(x) if small and x.shape[1] == self.layer_sizes[0] else self.raw_logits(x)
        top = np.maximum.reduce(z, axis=1)
        return calibrated_proba(z, self.calibration), top

    def predict(self, x):
        """Predicted labels: x as for ``predict_proba`` -> (n,) int64."""
        x = to_model_input(x, self.layer_sizes[0])
        if x.shape[0] <= _PREDICT_CHUNK:
            return self.logits(x).argmax(axis=1).astype(np.int64)
        return self.predict_proba(x).argmax(axis=1).astype(np.int64)

    def evaluate(self, x, y, batch_size: int = _PREDICT_CHUNK):
        """(mean cross-entropy, accuracy) of the model on x, y; no label smoothing."""
        x = to_model_input(x, self.layer_sizes[0])
        y = np.asarray(y)
        loss_fn, total, correct = SoftmaxCrossEntropy(), 0.0, 0
        for i in range(0, len(x), batch_size):
            z = self.logits(x[i:i + batch_size])
            yb = y[i:i + batch_size]
            correct += int((z.argmax(axis=1) == yb).sum())
            total += loss_fn.forward(z, yb) * len(yb)
        return total / max(len(x), 1), correct / max(len(x), 1)

    # ---- training --------------------------------------------------------------------------
    def _forward(self, x, training):
        for layer in self.layers:
            x = layer.forward(x, training)
        return x

    def _backward(self, grad):
        for layer in reversed(self.layers):
            grad = layer.backward(grad)

    def loss_and_grads(self, x, y):
        """Training-mode mean loss (plus the L2 term) on one batch; fills ``flat_grads`` with its gradient.

        Returns (loss, logits); logits (n, k) float32 is a reused buffer, valid until the next call.
        """
        logits = self._forward(x, True)
        loss = self.loss.forward(logits, y)
        self._backward(self.loss.backward())
        if self.weight_decay:
            lam = F32(self.weight_decay)
            for d in self.dense:
                loss += 0.5 * self.weight_decay * float(np.vdot(d.W, d.W))
                d.dW += lam * d.W
        return loss, logits

    def fit(self, x, y, *, epochs: int = 5, batch_size: int = 32, optimizer: Optimizer | None = None,
            schedule: str = "constant", validation_data=None, label_smoothing: float = 0.0,
            weight_decay: float = 0.0, batch_hook=None, patience: int = 0, callbacks=(),
            average: float = 0.0, batch_source=None):
        """Train on x: (n, n_inputs) float32 in [0, 1] (or uint8 (n, 28, 28)), y: (n,) int labels.

        Mini-batches are shuffled from the model's generator, so the same seed and data give
        bit-identical weights. ``batch_hook(xb, yb, rng) -> (xb, yb)`` may change each batch before the
        step (augmentation, extra examples); it gets the model's generator. ``weight_decay`` is an L2 term
        added to the loss. ``callbacks`` are called as ``cb(record, model)`` after each epoch (see
        ``callbacks.py``); a true return stops. ``patience`` > 0 adds ``EarlyStopping(patience)``, which
        needs ``validation_data``. ``average`` > 0 ends the fit with the mean of the weights taken every
        few steps over that share of its steps, at the end (``averaging.py``), before the last epoch's
        validation (early stopping may then still restore an earlier epoch's weights). A non-finite loss
        or weight raises ``TrainingDiverged``. ``batch_source`` makes the batches (``steps.InProcessBatches``
        by default; ``producer.ProcessBatches`` makes the same in another process).
        Returns a history dict of per-epoch lists (epoch, loss, acc, val_loss, val_acc, lr, seconds).
        """
        x, y = self._training_arrays(x, y)
        _check_fit_options(epochs, batch_size, weight_decay, average)
        callbacks = list(callbacks)
        if patience:
            if validation_data is None:
                raise ValueError("patience (early stopping) needs validation_data")
            callbacks.append(EarlyStopping(patience))
        if validation_data is not None:
            vx = to_model_input(validation_data[0], self.layer_sizes[0])
            vy = np.asarray(validation_data[1])
        optimizer = optimizer or make_optimizer("adam", 1e-3)
        optimizer.bind(self.flat_params, self.flat_grads, [d.W for d in self.dense])
        self.loss = SoftmaxCrossEntropy(label_smoothing)
        self.weight_decay = float(weight_decay)
        total = epochs * -(-len(x) // batch_size)
        lrs = learning_rates(optimizer.lr, schedule, total)
        averaged = round(total * average)   # the last ``averaged`` steps
        averager = WeightAverage(self.flat_params, total - averaged + 1) if averaged else None
        history = {k: [] for k in HISTORY_KEYS}
        source = (batch_source or InProcessBatches)(x, y, batch_size, self.rng, batch_hook, epochs)
        try:
            for epoch in range(1, epochs + 1):
                t0 = time.perf_counter()
                # overflow shows as a non-finite loss or weight, checked (and named) once per epoch
                with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                    loss, acc, lr = self._train_epoch(source.epoch(), optimizer, lrs, averager)
                self._check_finite(epoch, loss, lr)
                if averager is not None and epoch == epochs:
                    averager.finish()
                record = {"epoch": epoch, "loss": loss, "acc": acc, "lr": lr,
                          "val_loss": None, "val_acc": None}
                if validation_data is not None:
                    record["val_loss"], record["val_acc"] = self.evaluate(vx, vy)
                record["seconds"] = time.perf_counter() - t0
                for key in HISTORY_KEYS:
                    history[key].append(record[key])
                if any([cb(record, self) for cb in callbacks]):  # a list, so every callback sees the epoch
                    break
            for cb in callbacks:
                if hasattr(cb, "on_train_end"):
                    cb.on_train_end(self)
        finally:
            source.close()
            self.loss, self.weight_decay = SoftmaxCrossEntropy(), 0.0
        return history

    def _check_finite(self, epoch: int, loss: float, lr: float):
        """Stop a fit whose loss or weights went non-finite: later epochs cannot recover from it."""
        if math.isfinite(loss) and np.isfinite(self.flat_params).all():
            return
        what = "loss" if not math.isfinite(loss) else "weights"
        raise TrainingDiverged(f"training diverged in epoch {epoch}: the {what} became non-finite "
                               f"(learning rate {lr:.3g}); a lower learning rate usually fixes it")

    def _training_arrays(self, x, y):
        """x as float32 (n, n_inputs) and y as (n,) labels in range, or ValueError."""
        x = to_model_input(x, self.layer_sizes[0])
        y = np.asarray(y)
        if y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"y must be (n,) integer labels matching x's {len(x)} rows, "
                             f"got {y.shape} {y.dtype}")
        if not len(x):
            raise ValueError("x has no rows: nothing to train on")
        if y.min() < 0 or y.max() >= self.layer_sizes[-1]:
            raise ValueError(f"labels must be in [0, {self.layer_sizes[-1]}), got {y.min()}..{y.max()}")
        return x, y

    def _train_epoch(self, batches, optimizer: Optimizer, lrs, averager=None):
        """One optimizer step per (xb, yb) batch. Returns the epoch's (mean loss, accuracy, last lr)."""
        loss_sum, correct, seen, labelled = 0.0, 0, 0, 0
        for xb, yb in batches:
            lr = next(lrs)
            loss, logits = self.loss_and_grads(xb, yb)
            loss_sum += loss * len(yb)
            correct += int(np.count_nonzero(logits.argmax(axis=1) == yb))
            seen += len(yb)
            # outlier rows (label -1, no class) count in the loss, not in the accuracy
            labelled += len(yb) if yb[-1] >= 0 else int(np.count_nonzero(yb >= 0))
            optimizer.step(lr)
            if averager is not None:
                averager.step()
        return loss_sum / seen, correct / max(labelled, 1), lr


HISTORY_KEYS = ("epoch", "loss", "acc", "val_loss", "val_acc", "lr", "seconds")


def _check_fit_options(epochs: int, batch_size: int, weight_decay: float, average: float = 0.0):
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
    if not weight_decay >= 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
    if not 0.0 <= average <= 1.0:
        raise ValueError(f"average must be in [0, 1], got {average!r}")
