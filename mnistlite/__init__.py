"""mnistlite: a small, fast, honest MNIST pipeline built on numpy alone.

The public API is listed in ``__all__``; Pillow and boto3 are imported only by the modules
that need them (``decode``, ``preprocess`` image functions, ``data.images``, ``data.s3``, ``model_registry``).
"""
__version__ = "0.1.0"

from .config import DEFAULT, RECIPES, REFERENCE, TrainConfig
from .data.idx import IDXError, read_idx, write_idx
from .data.mnist import DatasetError, data_sha256, load_mnist
from .decode import ImageError, ImageTooLarge, decode_image
from .layers import Activation, Dense, Dropout, ReLU
from .losses import SoftmaxCrossEntropy, log_softmax, softmax
from .metrics import (
                      accuracy,
                      confusion_matrix,
                      expected_calibration_error,
                      log_loss,
                      mcnemar_exact,
                      mcnemar_table,
                      per_class_report,
)
from .model import MLP, build, train
from .optim import SCHEDULES, SGD, Adam, AdamW, make_optimizer
from .preprocess import (
                      image_to_input,
                      preprocess_image,
                      to_float,
                      to_mnist,
                      to_model_input,
)
from .recipe import fit_recipe
from .serialize import ModelFileError, load, loads, save

__all__ = [
    "__version__", "TrainConfig", "DEFAULT", "REFERENCE", "RECIPES",
    "MLP", "build", "train", "fit_recipe", "save", "load", "loads", "ModelFileError",
    "Dense", "Activation", "ReLU", "Dropout", "SoftmaxCrossEntropy", "softmax", "log_softmax",
    "SGD", "Adam", "AdamW", "make_optimizer", "SCHEDULES",
    "load_mnist", "read_idx", "write_idx", "IDXError", "DatasetError", "data_sha256",
    "to_float", "to_model_input", "ImageError", "ImageTooLarge", "decode_image", "preprocess_image",
    "image_to_input", "to_mnist",
    "accuracy", "confusion_matrix", "per_class_report", "log_loss", "expected_calibration_error",
    "mcnemar_exact", "mcnemar_table",
]
