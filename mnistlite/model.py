"""MLP: a stack of Dense + activation (+ dropout) layers ending in softmax; fit, predict, predict_proba."""
from __future__ import annotations

import time

import numpy as np

from .augment import Augment, clutter_bank, random_shift
from .config import TrainConfig
from .layers import Activation, Dense, Dropout
from .losses import SoftmaxCrossEntropy, softmax
from .optim import Optimizer, make_optimizer, schedule_fn
from .preprocess import to_model_input
from .utils import as_generator

F32 = np.float32
_PREDICT_CHUNK = 4096  # rows per block in predict_proba: bounds memory for big inputs


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
        self.metadata: dict = {}
        self.sha256: str | None = None  # set by mnistlite.load: the model file's hash
        init = init or ("he" if activation == "relu" else "glorot")
        self.layers, self.dense = [], []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            d = Dense(n_in, n_out, init=init, rng=None if init == "zeros" else self.rng)
            self.layers.append(d)
            self.dense.append(d)
            if i < len(sizes) - 2:
                self.layers.append(Activation(activation))
                if dropout:
                    self.layers.append(Dropout(dropout, rng=self.rng))
        self.dense[0].needs_input_grad = False
        self._act = self.layers[1]._fn if len(self.dense) > 1 else None
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
        """Raw scores: x float32 (n, 784) -> (n, k) float32. No caching, safe across threads."""
        h = x
        for d in self.dense[:-1]:
            h = h @ d.W
            h += d.b
            self._act(h)
        d = self.dense[-1]
        h = h @ d.W
        h += d.b
        return h

    def predict_proba(self, x):
        """Class probabilities: x float32 (n, 784) in [0, 1] (or uint8 (n, 28, 28)) -> (n, k) float32."""
        x = to_model_input(x, self.layer_sizes[0])
        if x.shape[0] <= _PREDICT_CHUNK:
            return softmax(self.logits(x))
        return np.concatenate([softmax(self.logits(x[i:i + _PREDICT_CHUNK]))
                               for i in range(0, x.shape[0], _PREDICT_CHUNK)])

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
        """Training-mode mean loss (plus the L2 term) on one batch; fills ``flat_grads``.

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
            weight_decay: float = 0.0, shift: int = 0, augment: float = 0.0, patience: int = 0,
            callbacks=(), verbose: bool = True):
        """Train on x: (n, 784) float32 in [0, 1] (or uint8 (n, 28, 28)), y: (n,) int labels.

        Mini-batches are shuffled from the model's generator, so the same seed and data give
        bit-identical weights. ``augment`` > 0 distorts that share of every batch (``Augment``) before
        the ``shift``; labels are never changed. With ``patience`` > 0 and validation data, training stops
        after that many epochs without a better validation loss and the best weights are restored.
        ``callbacks`` are called as ``cb(record, model)`` after each epoch; returning True stops.
        Returns a history dict of per-epoch lists (loss, acc, val_loss, val_acc, lr, seconds).
        """
        x = to_model_input(x, self.layer_sizes[0])
        y = np.asarray(y)
        if y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"y must be (n,) integer labels matching x's {len(x)} rows, got {y.shape} {y.dtype}")
        if len(x) and (y.min() < 0 or y.max() >= self.layer_sizes[-1]):
            raise ValueError(f"labels must be in [0, {self.layer_sizes[-1]}), got {y.min()}..{y.max()}")
        if epochs < 1 or batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, got {epochs!r}, {batch_size!r}")
        if patience and validation_data is None:
            raise ValueError("patience (early stopping) needs validation_data")
        if not 0.0 <= augment <= 1.0:
            raise ValueError(f"augment must be in [0, 1], got {augment!r}")
        if augment and x.shape[1] != 784:
            raise ValueError(f"augment needs 28x28 images (784 inputs), got {x.shape[1]} inputs")
        distort = Augment(p=float(augment)) if augment else None
        bank = clutter_bank(distort.bank, self.rng) if distort else None
        optimizer = optimizer or make_optimizer("adam", 1e-3)
        decay = [d.W for d in self.dense]
        optimizer.bind(self.flat_params, self.flat_grads, decay)
        sched = schedule_fn(schedule)
        self.loss = SoftmaxCrossEntropy(label_smoothing)
        self.weight_decay = float(weight_decay) if optimizer.name != "adamw" else 0.0
        if validation_data is not None:
            vx = to_model_input(validation_data[0], self.layer_sizes[0])
            vy = np.asarray(validation_data[1])
        n = len(x)
        steps_per_epoch = -(-n // batch_size)
        total_steps, step = epochs * steps_per_epoch, 0
        xb_full = np.empty((batch_size, x.shape[1]), dtype=F32)
        yb_full = np.empty(batch_size, dtype=y.dtype)
        history = {k: [] for k in ("epoch", "loss", "acc", "val_loss", "val_acc", "lr", "seconds")}
        best = (np.inf, None)
        bad_epochs = 0
        for epoch in range(1, epochs + 1):
            t0 = time.perf_counter()
            order = self.rng.permutation(n)
            loss_sum, correct = 0.0, 0
            for start in range(0, n, batch_size):
                idx = order[start:start + batch_size]
                if len(idx) == batch_size:
                    xb = np.take(x, idx, axis=0, out=xb_full)
                    yb = np.take(y, idx, out=yb_full)
                else:
                    xb, yb = x[idx], y[idx]
                if distort:
                    xb = distort(xb, self.rng, bank)
                if shift:
                    xb = random_shift(xb, shift, self.rng)
                lr = optimizer.lr * sched(step, total_steps)
                loss, logits = self.loss_and_grads(xb, yb)
                loss_sum += loss * len(yb)
                correct += int(np.count_nonzero(logits.argmax(axis=1) == yb))
                optimizer.step(lr)
                step += 1
            record = {"epoch": epoch, "loss": loss_sum / n, "acc": correct / n, "lr": lr,
                      "val_loss": None, "val_acc": None}
            if validation_data is not None:
                record["val_loss"], record["val_acc"] = self.evaluate(vx, vy)
            record["seconds"] = time.perf_counter() - t0
            for k in history:
                history[k].append(record[k])
            if verbose:
                print(format_epoch(record, epochs), flush=True)
            stop = any(cb(record, self) for cb in callbacks)
            if patience:
                if record["val_loss"] < best[0]:
                    best, bad_epochs = (record["val_loss"], self.flat_params.copy()), 0
                else:
                    bad_epochs += 1
                    if bad_epochs >= patience:
                        stop = True
            if stop:
                break
        if patience and best[1] is not None:
            self.flat_params[...] = best[1]
        self.loss = SoftmaxCrossEntropy()
        return history


def format_epoch(r: dict, epochs: int) -> str:
    """One progress line: epoch, train loss/acc, val loss/acc, learning rate, seconds."""
    width = len(str(epochs))
    line = f"epoch {r['epoch']:>{width}}/{epochs}  loss {r['loss']:.4f}  acc {r['acc']:.4f}"
    if r.get("val_loss") is not None:
        line += f"  val_loss {r['val_loss']:.4f}  val_acc {r['val_acc']:.4f}"
    return line + f"  lr {r['lr']:.2e}  {r['seconds']:.2f}s"


def build(config: TrainConfig) -> MLP:
    """A fresh, untrained MLP for ``config`` (sizes, activation, dropout, seed)."""
    return MLP(config.layer_sizes, activation=config.activation, dropout=config.dropout,
               seed=config.seed, config=config)


def train(config: TrainConfig, x, y, *, validation_data=None, callbacks=(), verbose: bool = True):
    """Build an MLP from ``config`` and fit it on x, y. Returns (model, history)."""
    model = build(config)
    opt = make_optimizer(config.optimizer, config.lr, momentum=config.momentum,
                         nesterov=config.nesterov, weight_decay=config.weight_decay)
    history = model.fit(x, y, epochs=config.epochs, batch_size=config.batch_size, optimizer=opt,
                        schedule=config.schedule, validation_data=validation_data,
                        label_smoothing=config.label_smoothing, weight_decay=config.weight_decay,
                        shift=config.shift, augment=config.augment, patience=config.patience,
                        callbacks=callbacks, verbose=verbose)
    return model, history
