"""Evaluate models on a fixed test set: metrics with hashes, and the candidate-vs-production comparison.

Everything that can go wrong with inputs (missing or corrupt model, unreadable test set, a model
whose input size does not fit the images) raises ``EvaluationError`` with a one-line message.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.idx import IDXError
from ..data.mnist import FILES, DatasetError, data_sha256, load_idx_pair, load_mnist
from ..files import utc_now
from ..metrics import confusion_matrix, scores
from ..nn.model import MLP
from ..serialize import ModelFileError, load
from .gate import Policy, compare
from .honesty import honesty_checks, honesty_metrics

N_CLASSES = 10
VERDICT_SCHEMA = "mnistlite.verdict/1"
# MNIST's own documentation: "The first 5000 examples of the test set are taken from the original NIST
# training set [SD-3, Census Bureau employees]. The last 5000 are taken from the original NIST test set
# [SD-1, high-school students]. The first 5000 are cleaner and easier than the last 5000."
WRITER_GROUPS = {"census (first 5,000)": (0, 5000), "students (last 5,000)": (5000, 10000)}


class EvaluationError(ValueError):
    """The evaluation could not run (bad model file, bad test set); the message says which and why."""


class BadModelFile(EvaluationError):
    """A model file is missing, unreadable or damaged."""


class TestSetError(EvaluationError):
    """A test set folder cannot serve: ``folder`` is the folder given, ``problems`` its unusable files."""

    __test__ = False  # not a pytest class, despite the name

    def __init__(self, message: str, folder: Path, problems: list | None = None):
        super().__init__(message)
        self.folder = folder
        self.problems = problems or []


@dataclass
class TestSet:
    """A labelled test set: images uint8 (n, 28, 28), labels int64 (n,), content hash and origin."""

    __test__ = False  # not a pytest class, despite the name

    images: np.ndarray
    labels: np.ndarray
    sha256: str
    source: str

    @property
    def groups(self) -> dict:
        """Writer groups {name: (start, stop)}: MNIST's t10k halves for an IDX test set of 10,000, else {}."""
        is_t10k = self.source.startswith(("mnist:", "idx:")) and len(self.labels) == 10000
        return dict(WRITER_GROUPS) if is_t10k else {}


def _idx_test_files(folder: Path):
    """The t10k image and label files in ``folder`` (gzipped or not), or None if absent."""
    found = []
    for key in ("test_images", "test_labels"):
        name = FILES[key]
        path = next((folder / n for n in (name, name.removesuffix(".gz")) if (folder / n).is_file()), None)
        if path is None:
            return None
        found.append(path)
    return found


def load_test_set(data_dir=None) -> TestSet:
    """The test set from ``data_dir`` (MNIST IDX folder or folder of NNNNN_label_D.png), else MNIST's t10k."""
    try:
        if data_dir is None:
            _, (images, labels) = load_mnist(as_float=False)
            source = "mnist:t10k"
        else:
            folder = Path(data_dir)
            if not folder.is_dir():
                raise TestSetError(f"{folder}: no such folder", folder)
            idx = _idx_test_files(folder)
            if idx is not None:
                images, labels = load_idx_pair(*idx)
                source = f"idx:{folder}"
            elif any(folder.glob("*.png")):
                images, labels = _read_png_folder(folder)
                source = f"png:{folder}"
            else:
                raise TestSetError(f"{folder}: holds neither {FILES['test_images']} + "
                                   f"{FILES['test_labels']} nor NNNNN_label_D.png images", folder)
    except (DatasetError, IDXError) as e:
        raise EvaluationError(f"cannot load the test set: {e}") from None
    if images.ndim != 3 or len(images) == 0:
        raise EvaluationError(f"test set from {source} is empty or not (n, 28, 28) images: "
                              f"shape {images.shape}")
    if labels.min() < 0 or labels.max() >= N_CLASSES:
        raise EvaluationError(f"test set from {source} has labels outside 0..{N_CLASSES - 1}")
    labels = labels.astype(np.int64)
    return TestSet(images, labels, data_sha256(images, labels), source)


def _read_png_folder(folder: Path):
    try:
        from ..data.images import read_folder
    except ImportError:
        raise EvaluationError("reading PNG test folders needs mnistlite.data.images, which is not "
                              "installed; pass an MNIST IDX folder instead") from None
    found = read_folder(folder)
    if found.problems:
        first = found.problems[0]
        raise TestSetError(f"{folder}: {len(found.problems)} unusable file(s), e.g. {first['file']}: "
                           f"{first['reason']}; a fixed test set must be clean", folder, found.problems)
    return np.asarray(found.images, dtype=np.uint8), np.asarray(found.labels, dtype=np.int64)


def load_model(path, test: TestSet) -> MLP:
    """Load a model file and check it takes the test images and predicts the 10 digits."""
    try:
        model = load(path)
    except ModelFileError as e:
        raise BadModelFile(str(e)) from None
    pixels = int(np.prod(test.images.shape[1:]))
    if model.layer_sizes[0] != pixels:
        raise EvaluationError(f"{path}: model expects {model.layer_sizes[0]} inputs but the test images have "
                              f"{pixels} pixels {test.images.shape[1:]}: wrong input shape")
    if model.layer_sizes[-1] != N_CLASSES:
        raise EvaluationError(f"{path}: model has {model.layer_sizes[-1]} outputs, "
                              f"expected {N_CLASSES} digits")
    return model


def evaluate(model: MLP, test: TestSet, path=None):
    """(metrics dict, proba (n, 10) float32) of ``model`` on ``test``; metric keys are a public contract."""
    proba, top = model.predict_scores(test.images)
    pred = proba.argmax(axis=1)
    metrics = {
        **scores(test.labels, proba, N_CLASSES),
        "groups": {g: float(np.mean(pred[lo:hi] == test.labels[lo:hi]))
                   for g, (lo, hi) in test.groups.items()},
        "confusion_matrix": confusion_matrix(test.labels, pred, N_CLASSES).tolist(),
        "model_sha256": model.sha256,
        "test_set_sha256": test.sha256,
        "test_set_source": test.source,
        "layer_sizes": model.layer_sizes,
        "model_path": None if path is None else str(path),
        "model_created": model.metadata.get("created"),
        **honesty_metrics(model, proba, test.labels, top),
    }
    return metrics, proba


@dataclass
class Comparison:
    """A finished comparison: the verdict document plus what the report draws from."""

    verdict: dict                 # the verdict JSON (see ``compare_files``)
    test: TestSet
    pred_candidate: np.ndarray    # (n,) int64
    pred_production: np.ndarray | None


def compare_files(candidate, production=None, data_dir=None, policy: Policy | None = None) -> Comparison:
    """Evaluate candidate (and production, None = first deploy) on one test set and apply the gate.

    The verdict document holds: passed, status, reasons, checks [{name, passed, detail}], policy,
    candidate and production (full metrics, production None on first deploy), mcnemar {b, c, p_value},
    first_deploy, hashes {candidate_model, production_model, test_set}, disagreements, evaluated_at.
    """
    policy = policy or Policy()
    test = load_test_set(data_dir)
    cand_metrics, cand_proba = evaluate(load_model(candidate, test), test, candidate)
    pred_c = cand_proba.argmax(axis=1).astype(np.int64)
    prod_metrics = pred_p = None
    if production is not None:
        prod_metrics, prod_proba = evaluate(load_model(production, test), test, production)
        pred_p = prod_proba.argmax(axis=1).astype(np.int64)
    verdict = compare(test.labels, pred_c, pred_p, policy, N_CLASSES, test.groups).to_dict()
    if prod_metrics is not None:
        _add_checks(verdict, honesty_checks(cand_metrics, prod_metrics, policy))
    verdict.update({
        "candidate": cand_metrics,
        "production": prod_metrics,
        "hashes": {"candidate_model": cand_metrics["model_sha256"],
                   "production_model": prod_metrics["model_sha256"] if prod_metrics else None,
                   "test_set": test.sha256},
        "disagreements": int(np.count_nonzero(pred_c != pred_p)) if pred_p is not None else 0,
        **_stamp(),
    })
    return Comparison(verdict, test, pred_c, pred_p)


def _add_checks(verdict: dict, checks: list) -> None:
    """Fold more checks into a verdict document: a failed one fails the verdict, with its reason."""
    verdict["checks"] += [c.to_dict() for c in checks]
    failed = [c for c in checks if not c.passed]
    verdict["reasons"] += [f"{c.name}: {c.detail}" for c in failed]
    if failed:
        verdict["passed"], verdict["status"] = False, "fail"


def error_verdict(message: str, policy: Policy | None = None, *, first_deploy: bool = False) -> dict:
    """The verdict document when the comparison could not run: status "error", never a pass."""
    return {"passed": False, "status": "error", "reasons": [message], "checks": [],
            "policy": (policy or Policy()).to_dict(), "candidate": None, "production": None,
            "mcnemar": None, "first_deploy": first_deploy,
            "hashes": {"candidate_model": None, "production_model": None, "test_set": None},
            "disagreements": 0, **_stamp()}


def _stamp() -> dict:
    return {"schema": VERDICT_SCHEMA,
            "evaluated_at": utc_now()}
