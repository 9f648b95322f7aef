"""scripts/train.py as a user runs it: flags, outputs, exit codes and one-line errors."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mnistlite as ml

# Not imported from conftest: with conftest.py files in test subfolders, "conftest" names whichever came last.
ROOT = Path(__file__).resolve().parent.parent
TRAIN = [sys.executable, str(ROOT / "scripts" / "train.py")]


def run(*args, env=None):
    return subprocess.run([*TRAIN, *map(str, args)], capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.slow
def test_train_writes_model_and_metrics(mnist_dir, tmp_path):
    out, metrics = tmp_path / "m.npz", tmp_path / "m.json"
    r = run("--data", mnist_dir, "--hidden", "32", "--optimizer", "adam", "--lr", "0.002",
            "--batch-size", "128", "--epochs", "2", "--seed", "3", "--val-split", "0.1",
            "--schedule", "cosine", "--out", out, "--metrics", metrics)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 4  # the script's progress printer: one line per epoch, then the threads, the summary
    for epoch, line in enumerate(lines[:2], start=1):
        assert re.fullmatch(rf"epoch {epoch}/2  loss \d\.\d{{4}}  acc \d\.\d{{4}}  val_loss \d\.\d{{4}}  "
                            r"val_acc \d\.\d{4}  lr \d\.\d\de-\d\d  \d+\.\d\ds", line), line
    assert lines[2].startswith("BLAS threads: ") and lines[3].startswith("test accuracy ")
    m = json.loads(metrics.read_text())
    for key in ("test_accuracy", "train_seconds", "epochs", "peak_rss_mb", "model_sha256"):
        assert key in m
    assert m["epochs"] == 2 and m["n_train"] == 54000 and m["n_test"] == 10000 and m["test_accuracy"] > 0.93
    model = ml.load(out)
    assert model.layer_sizes == [784, 32, 10]
    assert model.config.seed == 3 and model.config.schedule == "cosine" and model.config.val_split == 0.1
    assert model.metadata["metrics"]["test_accuracy"] == m["test_accuracy"]
    assert len(model.metadata["training_data_sha256"]) == 64
    assert m["model_sha256"] == model.sha256


@pytest.mark.slow
def test_peak_rss_is_the_scripts_own_not_its_parents(mnist_dir, tmp_path):
    """Linux carries ru_maxrss across exec: started by a 1.5 GB process, train.py must not report 1.5 GB."""
    metrics = tmp_path / "m.json"
    parent = ("import subprocess, sys, numpy as np; big = np.ones(400_000_000, np.float32); "
              "sys.exit(subprocess.run(sys.argv[1:]).returncode)")
    r = subprocess.run([sys.executable, "-c", parent, *TRAIN, "--data", str(mnist_dir), "--hidden", "0",
                        "--epochs", "1", "--batch-size", "512", "--quiet", "--out", str(tmp_path / "m.npz"),
                        "--metrics", str(metrics)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    peak = json.loads(metrics.read_text())["peak_rss_mb"]
    assert 100 < peak < 1000, peak


@pytest.mark.slow
def test_quiet_softmax_regression_float16(mnist_dir, tmp_path):
    out = tmp_path / "s.npz"
    r = run("--data", mnist_dir, "--hidden", "0", "--epochs", "1", "--batch-size", "256", "--lr", "0.01",
            "--float16", "--quiet", "--out", out, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "s.metrics.json").read_text())
    assert (m["blas_threads"], m["blas_threads_pinned"], m["blas_thread_changes"]) == (1, True, [])
    assert "BLAS threads: 1 (OPENBLAS_NUM_THREADS)" in r.stdout
    assert "epoch" not in r.stdout and "test accuracy" in r.stdout
    model = ml.load(out)
    assert model.layer_sizes == [784, 10] and model.metadata["dtype"] == "float16"
    assert (tmp_path / "s.metrics.json").exists()


@pytest.mark.parametrize("args, code, message", [
    (["--hidden", "12,x"], 2, "--hidden must be comma-separated ints"),
    (["--lr", "-1"], 2, "error: --lr: lr must be > 0, got -1.0"),
    (["--optimizer", "rmsprop"], 2, "invalid choice"),
    (["--dropout", "1.5"], 2, "error: --dropout: dropout must be in [0, 1), got 1.5"),
    (["--epochs", "0"], 2, "error: --epochs: epochs must be >= 1, got 0"),
    (["--nesterov"], 2, "error: --nesterov, --optimizer: nesterov applies to optimizer 'sgd' only"),
    (["--patience", "2", "--val-split", "0"], 2,
     "error: --patience, --val-split: patience 2 (early stopping) needs validation data"),
    (["--shift", "40"], 2, "error: --shift: shift must be in [0, 13] pixels, got 40"),
    (["--threads", "-1"], 2, "argument --threads: must be an integer >= 1, got '-1'"),
    (["--data", "/nonexistent/folder"], 1, "no such folder"),
])
def test_bad_usage_and_missing_data(mnist_dir, tmp_path, args, code, message):
    r = run(*args, "--out", tmp_path / "x.npz")
    assert r.returncode == code
    assert message in r.stderr and "Traceback" not in r.stderr
    if "usage:" not in r.stderr:  # argparse's own errors come with the usage line
        assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.npz").exists()


def test_a_diverging_fit_is_a_one_line_error_naming_the_epoch(mnist_dir, tmp_path):
    r = run("--data", mnist_dir, "--hidden", "16", "--optimizer", "sgd", "--lr", "1e20", "--epochs", "2",
            "--schedule", "constant", "--outliers", "0", "--quiet", "--out", tmp_path / "d.npz")
    assert r.returncode == 1 and not (tmp_path / "d.npz").exists()
    assert re.fullmatch(r"error: training diverged in epoch 1: the (loss|weights) became non-finite "
                        r"\(learning rate 1e\+20\); a lower learning rate usually fixes it \(--lr\)\n",
                        r.stderr)


def test_corrupt_idx_data_is_a_one_line_error(mnist_dir, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ml.data.mnist.FILES.values():
        (bad / name).write_bytes((mnist_dir / name).read_bytes()[:1000])
    r = run("--data", bad, "--out", tmp_path / "x.npz")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "corrupt or truncated gzip" in r.stderr and str(bad) in r.stderr


@pytest.mark.slow
def test_png_folder_alone_and_combined_with_mnist(mnist_dir, mnist_uint8, tmp_path):
    from mnistlite.data.images import write_folder

    (x, y), _ = mnist_uint8
    weeks = tmp_path / "weeks"
    write_folder(weeks / "week-1", x[:300], y[:300])
    write_folder(weeks / "week-2", x[300:500], y[300:500], start_id=300)
    (weeks / "week-2" / "oops.png").write_bytes(b"not a png")
    r = run("--data", weeks, "--hidden", "16", "--epochs", "1", "--batch-size", "64", "--quiet",
            "--out", tmp_path / "w.npz", "--metrics", tmp_path / "w.json")
    assert r.returncode == 0, r.stderr
    assert "skipped week-2/oops.png" in r.stderr
    m = json.loads((tmp_path / "w.json").read_text())
    # a tenth held out to calibrate; tested on MNIST's test split
    assert (m["n_train"], m["n_val"], m["n_test"]) == (450, 50, 10000)
    r = run("--data", mnist_dir, "--data", weeks, "--hidden", "16", "--epochs", "1", "--batch-size", "256",
            "--quiet", "--out", tmp_path / "c.npz", "--metrics", tmp_path / "c.json")
    assert r.returncode == 0, r.stderr
    c = json.loads((tmp_path / "c.json").read_text())
    assert c["n_train"] + c["n_val"] == 60500


def test_labels_the_model_cannot_learn_are_a_one_line_data_error(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    images = np.random.default_rng(0).integers(0, 256, (60, 28, 28), dtype=np.uint8)
    labels = (np.arange(60) % 12).astype(np.uint8)  # 10 and 11 are no digits
    for split in ("train", "test"):
        ml.write_idx(bad / ml.data.mnist.FILES[f"{split}_images"], images)
        ml.write_idx(bad / ml.data.mnist.FILES[f"{split}_labels"], labels)
    r = run("--data", bad, "--hidden", "4", "--epochs", "1", "--outliers", "0", "--out", tmp_path / "x.npz")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip() == "error: labels must be in [0, 10), got 0..11"
    assert not (tmp_path / "x.npz").exists()


def test_images_that_fill_their_frame_are_named_and_reported(tmp_path):
    """Fashion-MNIST-like data (every image inked to its edge): the distortions pass it through, and the
    user is told so; digits with a blank margin get no such note."""
    data = tmp_path / "frames"
    data.mkdir()
    rng = np.random.default_rng(0)
    labels = (np.arange(200) % 10).astype(np.uint8)
    images = (40 + labels[:, None, None] * 20 + rng.integers(0, 10, (200, 28, 28))).astype(np.uint8)
    images[:20] = 0  # one image in ten is blank: it has a margin
    for split in ("train", "test"):
        ml.write_idx(data / ml.data.mnist.FILES[f"{split}_images"], images)
        ml.write_idx(data / ml.data.mnist.FILES[f"{split}_labels"], labels)
    r = run("--data", data, "--test-data", data, "--hidden", "8", "--epochs", "1", "--outliers", "0",
            "--quiet", "--val-split", "0", "--out", tmp_path / "f.npz", "--metrics", tmp_path / "f.json")
    assert r.returncode == 0, r.stderr
    assert "note: 90% of the training images fill their frame" in r.stdout
    assert json.loads((tmp_path / "f.json").read_text())["augment_reach"] == pytest.approx(0.1)
    r = run("--data", data, "--test-data", data, "--hidden", "8", "--epochs", "1", "--outliers", "0",
            "--quiet", "--augment", "0", "--out", tmp_path / "g.npz", "--metrics", tmp_path / "g.json")
    assert r.returncode == 0 and "note:" not in r.stdout
    assert json.loads((tmp_path / "g.json").read_text())["augment_reach"] == 0.0
