"""TrainConfig: every knob of a training run in one dataclass, saved inside the model file."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .layers import ACTIVATIONS
from .optim import OPTIMIZERS, SCHEDULES


class ConfigError(ValueError):
    """A TrainConfig setting that is out of range or not a valid choice; ``fields`` names the settings."""

    def __init__(self, fields, message: str):
        super().__init__(message)
        self.fields = (fields,) if isinstance(fields, str) else tuple(fields)


@dataclass(frozen=True)
class TrainConfig:
    """A training recipe. The defaults are the project's default recipe (see ``DEFAULT`` below).

    ``hidden`` lists hidden-layer widths (empty: softmax regression). ``shift`` is the largest random
    translation in pixels applied to each training image (0: none). ``augment`` is the share of each
    batch distorted by ``mnistlite.augment.Augment`` (rotation, shear, scale, stroke width, blur,
    clutter; 0: none).
    """

    hidden: tuple = (512, 256)
    activation: str = "relu"
    dropout: float = 0.0
    optimizer: str = "adam"
    lr: float = 2e-3
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    label_smoothing: float = 0.1
    schedule: str = "cosine"
    batch_size: int = 256
    epochs: int = 32
    val_split: float = 0.0
    patience: int = 0
    shift: int = 1
    augment: float = 0.5
    seed: int = 0
    n_inputs: int = 784
    n_classes: int = 10

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
        if not 0.0 <= self.augment <= 1.0:
            raise ConfigError("augment", f"augment must be in [0, 1], got {self.augment!r}")
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
        if self.nesterov and self.optimizer != "sgd":
            raise ConfigError(("nesterov", "optimizer"),
                              f"nesterov applies to optimizer 'sgd' only, got optimizer {self.optimizer!r}")

    @property
    def layer_sizes(self) -> list:
        return [self.n_inputs, *self.hidden, self.n_classes]

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """Build from a dict (as saved in a model file); unknown keys are an error, not ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown TrainConfig fields {unknown}; valid fields: {sorted(names)}")
        return cls(**d)

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)


# The previous Keras model, kept as the speed/accuracy reference: 784-128-10, Adam 1e-3, batch 32.
REFERENCE = TrainConfig(hidden=(128,), optimizer="adam", lr=1e-3, batch_size=32, epochs=5,
                        schedule="constant", label_smoothing=0.0, shift=0, augment=0.0)

# The project's default recipe (what `scripts/train.py` trains with no flags): 784-512-256-10,
# Adam 2e-3 with a cosine schedule, batch 256, label smoothing 0.1, +-1 pixel shifts, half of each
# batch's images with a blank margin distorted (augment.Augment), 32 epochs. See docs/realworld.md for
# how it was chosen.
DEFAULT = TrainConfig()

RECIPES = {"default": DEFAULT, "reference": REFERENCE}
