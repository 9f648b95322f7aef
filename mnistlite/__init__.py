"""mnistlite: a small, fast, honest MNIST pipeline built on numpy alone.

The folders are the architecture (docs/design.md): ``nn/`` the numerics, ``images/`` image handling,
``data/`` data sources, ``quality/`` the data gate, ``release/`` evaluation, the gate and the registry,
``cli/`` the command-line tools. The public API is listed in ``__all__``; Pillow and boto3 are imported
only by the modules that need them. Training: ``MLP.fit`` (arrays in, a history out); ``train`` builds
the model a ``TrainConfig`` describes and fits it with the digit augmentation; ``fit_recipe`` adds what
``scripts/train.py`` reports (validation hold-out, BLAS threads, fit time, test metrics).
"""
__version__ = "0.1.0"

from .data.idx import IDXError, read_idx, write_idx
from .data.mnist import DatasetError, data_sha256, load_mnist
from .images.decode import ImageError, ImageTooLarge, decode_image
from .images.preprocess import image_to_input, preprocess_image, to_mnist
from .metrics import (
    accuracy,
    confusion_matrix,
    expected_calibration_error,
    log_loss,
    mcnemar_exact,
    mcnemar_table,
    per_class_report,
)
from .nn.arrays import to_float, to_model_input
from .nn.callbacks import EarlyStopping
from .nn.config import ConfigError, TrainConfig
from .nn.layers import Activation, Dense, Dropout, ReLU
from .nn.losses import SoftmaxCrossEntropy, log_softmax, softmax
from .nn.model import MLP, TrainingDiverged
from .nn.optim import SCHEDULES, SGD, Adam, AdamW, make_optimizer
from .recipe import DEFAULT, RECIPES, REFERENCE, build, fit_recipe, train
from .serialize import ModelFileError, load, loads, save

__all__ = [
    "__version__", "TrainConfig", "ConfigError", "DEFAULT", "REFERENCE", "RECIPES",
    "MLP", "TrainingDiverged", "EarlyStopping", "build", "train", "fit_recipe",
    "save", "load", "loads", "ModelFileError",
    "Dense", "Activation", "ReLU", "Dropout", "SoftmaxCrossEntropy", "softmax", "log_softmax",
    "SGD", "Adam", "AdamW", "make_optimizer", "SCHEDULES",
    "load_mnist", "read_idx", "write_idx", "IDXError", "DatasetError", "data_sha256",
    "to_float", "to_model_input", "ImageError", "ImageTooLarge", "decode_image", "preprocess_image",
    "image_to_input", "to_mnist",
    "accuracy", "confusion_matrix", "per_class_report", "log_loss", "expected_calibration_error",
    "mcnemar_exact", "mcnemar_table",
]
