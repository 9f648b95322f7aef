"""TrainConfig: every knob of a training run in one dataclass, saved inside the model file."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from .layers import ACTIVATIONS
from .optim import OPTIMIZERS, SCHEDULES


class ConfigError(ValueError):
    """A TrainConfig setting that is out of range or not a valid choice; ``fields`` names the settings."""

    def __init__(self, fields, message: str):
        super().__init__(message)
        self.fields = (fields,) if isinstance(fields, str) else tuple(fields)


def strict_from_dict(cls, d: dict, what: str):
    """``cls(**d)`` for a dataclass read from a file; names the keys it does not know (no TypeError)."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ValueError(f"unknown {what} fields {unknown}; valid fields: {sorted(names)}")
    return cls(**d)


def _knob(default, help: str, **extra):
    """A TrainConfig field: its default and the one-line help the CLI's flag shows."""
    return field(default=default, metadata={"help": help, **extra})


@dataclass(frozen=True)
class TrainConfig:
    """A training recipe: every hyperparameter, declared once here with its help. The defaults are the
    project's default recipe; ``scripts/train.py`` makes one flag per field from this declaration.
    """

    hidden: tuple = _knob((384, 256), "hidden-layer widths, e.g. 128 or 384,256 (0: softmax regression)",
                          metavar="SIZES")
    activation: str = _knob("relu", "hidden-layer nonlinearity", choices=ACTIVATIONS)
    dropout: float = _knob(0.0, "share of hidden units dropped in training, in [0, 1)")
    optimizer: str = _knob("adam", "the optimizer", choices=OPTIMIZERS)
    lr: float = _knob(2e-3, "base learning rate, > 0")
    momentum: float = _knob(0.9, "momentum of sgd, in [0, 1)")
    nesterov: bool = _knob(False, "Nesterov momentum (sgd only)")
    weight_decay: float = _knob(0.0, "L2 (sgd, adam) or decoupled (adamw) weight decay, >= 0")
    label_smoothing: float = _knob(0.1, "label smoothing of the loss, in [0, 1)")
    schedule: str = _knob("cosine", "learning-rate schedule over the whole fit", choices=SCHEDULES)
    batch_size: int = _knob(256, "images per optimizer step, >= 1")
    epochs: int = _knob(30, "passes over the training data, >= 1")
    val_split: float = _knob(0.1, "share of the training data held out for validation and, after the fit, "
                                  "to calibrate the probabilities and set the reject thresholds, in [0, 1)")
    average: float = _knob(0.0, "share of the fit, at its end, over which the weights are averaged (a "
                                "snapshot every few steps) and the mean kept, in [0, 1]; 0 turns it off")
    patience: int = _knob(0, "early stopping: epochs without a lower validation loss (needs val_split)")
    shift: int = _knob(1, "largest random translation of each training image, in pixels (0-13)")
    augment: float = _knob(0.5, "share of each batch distorted (rotation, shear, scale, stroke width, "
                                "blur, clutter), in [0, 1]; 0 turns it off")
    outliers: float = _knob(0.2, "generated non-digits (scribbles, letters, textures, ...) added to each "
                                 "batch with a uniform target, as a share of it, in [0, 1]; 0 turns it off")
    seed: int = _knob(0, "seed of every random draw (init, shuffling, augmentation), >= 0")
    n_inputs: int = _knob(784, "inputs per example (784 for 28x28 images)", cli=False)
    n_classes: int = _knob(10, "number of classes", cli=False)

    def __post_init__(self):
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        self.validate()

    def validate(self):
        """Raise ConfigError naming the first bad field and its valid range or choices."""
        if any(h <= 0 for h in self.hidden):
            raise ConfigError("hidden", f"hidden sizes must be > 0, got {self.hidden!r}")
        for name, choices in (("activation", ACTIVATIONS), ("optimizer", OPTIMIZERS),
                              ("schedule", SCHEDULES)):
            value = getattr(self, name)
            if value not in choices:
                raise ConfigError(name, f"{name} must be one of {sorted(choices)}, got {value!r}")
        if not self.lr > 0:
            raise ConfigError("lr", f"lr must be > 0, got {self.lr!r}")
        for name in ("augment", "outliers", "average"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(name, f"{name} must be in [0, 1], got {getattr(self, name)!r}")
        for name in ("dropout", "label_smoothing", "val_split", "momentum"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(name, f"{name} must be in [0, 1), got {getattr(self, name)!r}")
        if self.weight_decay < 0:
            raise ConfigError("weight_decay", f"weight_decay must be >= 0, got {self.weight_decay!r}")
        for name in ("batch_size", "epochs", "n_inputs"):
            if getattr(self, name) < 1:
                raise ConfigError(name, f"{name} must be >= 1, got {getattr(self, name)!r}")
        if self.n_classes < 2:
            raise ConfigError("n_classes", f"n_classes must be >= 2, got {self.n_classes!r}")
        for name in ("patience", "shift", "seed"):
            if getattr(self, name) < 0:
                raise ConfigError(name, f"{name} must be >= 0, got {getattr(self, name)!r}")
        if self.shift > 13:  # half the 28-pixel side: larger shifts can push a centred digit out of frame
            raise ConfigError("shift", f"shift must be in [0, 13] pixels, got {self.shift!r}")
        if (self.augment or self.shift or self.outliers) and self.n_inputs != 784:
            raise ConfigError(("augment", "shift", "outliers"), f"augment, shift and outliers need 28x28 "
                              f"images (784 inputs), got n_inputs {self.n_inputs}")
        if self.nesterov and self.optimizer != "sgd":
            raise ConfigError(("nesterov", "optimizer"),
                              f"nesterov applies to optimizer 'sgd' only, got optimizer {self.optimizer!r}")

    @property
    def layer_sizes(self) -> list:
        return [self.n_inputs, *self.hidden, self.n_classes]

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        if not self.average:
            # off, it is left out: a model file written without averaging stays readable by versions
            # from before the knob, so rolling the code back keeps serving today's models
            del d["average"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """Build from a dict (as saved in a model file); unknown keys are an error, not ignored. A missing
        ``average`` (``to_dict`` leaves it out when off, and files from before it never had it) reads as 0,
        whatever the default."""
        return strict_from_dict(cls, {"average": 0.0, **d}, "TrainConfig")

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)
