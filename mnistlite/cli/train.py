"""Train an MLP on MNIST-format data and save it with its metrics.

Usage:
  python scripts/train.py                                  # the default recipe on $MNISTLITE_DATA_DIR
  python scripts/train.py --data ../shared/datasets/mnist --hidden 128 --optimizer adam --lr 0.001 \\
      --batch-size 32 --epochs 5 --seed 0 --out model.npz --metrics metrics.json
  python scripts/train.py --recipe reference --out ref.npz  # the old Keras model's configuration
  python scripts/train.py --data weeks/ --test-data ../shared/datasets/mnist   # a folder of PNG weeks
  python scripts/train.py --data s3://BUCKET/PREFIX --weeks all              # fetch, validate, train
  python scripts/train.py --data mnist --data s3://BUCKET/PREFIX             # MNIST plus every good week

--data is an IDX folder (the four MNIST .gz files), a folder of NNNNN_label_D.png files (weeks
in subfolders are read too), s3://BUCKET/PREFIX, or "mnist" ($MNISTLITE_DATA_DIR, the cache or a
verified download); repeat it to train on several sources at once. Flags override the recipe's fields.
Exit codes: 0 trained, 1 data or training problem, 2 usage error.

Reproducible: with --threads fixed and SOURCE_DATE_EPOCH set (the model file's "created"; `make candidate`
passes the commit's time), the same data and flags give the same model file, byte for byte, on one
machine. Per-run facts (wall-clock time, fit seconds, peak memory, threads) go to the metrics file only.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

import mnistlite as ml
from mnistlite.data.mnist import FILES
from mnistlite.files import atomic_write_bytes, utc_now
from mnistlite.recipe import model_metrics

from .common import peak_rss_mb, s3_message, show_library_log


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def parse_hidden(text: str) -> tuple:
    """'512,256' -> (512, 256); '' or '0' -> () (softmax regression)."""
    if text.strip() in ("", "0", "none"):
        return ()
    try:
        sizes = tuple(int(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--hidden must be comma-separated ints like 512,256, got {text!r}") from None
    if any(s <= 0 for s in sizes):
        raise argparse.ArgumentTypeError(f"--hidden sizes must be > 0, got {text!r}")
    return sizes


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", action="append", metavar="SOURCE",
                   help="IDX folder, PNG folder, s3://BUCKET/PREFIX or 'mnist' (load_mnist); repeat to "
                        "combine sources (default: mnist)")
    p.add_argument("--weeks", default="all",
                   help="with s3:// data: latest, all, N or A-B (default: all that pass validation)")
    p.add_argument("--endpoint-url", help="S3-compatible endpoint (default: AWS_ENDPOINT_URL or AWS)")
    p.add_argument("--work-dir", default="data/weeks", help="where s3:// weeks are fetched and validated")
    p.add_argument("--max-bad-fraction", type=float, default=0.01, help="data gate policy for s3:// weeks")
    p.add_argument("--test-data",
                   help="IDX folder (or PNG folder) for the test accuracy (default: MNIST test split)")
    p.add_argument("--out", default="model.npz", help="model file to write (default: model.npz)")
    p.add_argument("--metrics", help="metrics JSON to write (default: OUT with .metrics.json)")
    p.add_argument("--recipe", choices=sorted(ml.RECIPES), default="default",
                   help="starting configuration; the flags below override its fields")
    add_config_flags(p.add_argument_group("recipe fields (default: the recipe's value)"))
    p.add_argument("--threads", type=positive_int, default=None,
                   help="BLAS threads during fit, kept for the whole fit (default: OPENBLAS_NUM_THREADS if "
                        "set, else one per idle CPU this process may use, lowered when others get busy); "
                        "pin it for a reproducible model: the bits depend on it")
    p.add_argument("--float16", action="store_true", help="store weights as float16 (half the file size)")
    p.add_argument("--quiet", action="store_true", help="no per-epoch progress lines")
    return p


def add_config_flags(group) -> None:
    """One flag per TrainConfig field, from its declaration: --batch-size sets batch_size."""
    for f in dataclasses.fields(ml.TrainConfig):
        meta = f.metadata
        if not meta.get("cli", True):
            continue
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool", bool):
            group.add_argument(flag, action="store_true", default=None, help=meta["help"])
            continue
        kind = {"tuple": parse_hidden, "int": int, "float": float, "str": str}[str(f.type)]
        choices = sorted(meta["choices"]) if "choices" in meta else None
        group.add_argument(flag, type=kind, choices=choices, metavar=meta.get("metavar"), help=meta["help"])


CONFIG_FLAGS = tuple(f.name for f in dataclasses.fields(ml.TrainConfig) if f.metadata.get("cli", True))


def make_config(args) -> ml.TrainConfig:
    overrides = {k: getattr(args, k) for k in CONFIG_FLAGS if getattr(args, k) is not None}
    return ml.RECIPES[args.recipe].replace(**overrides)


def config_error(e: ValueError) -> str:
    """A ConfigError's message with the flags that set the bad fields: '--lr: lr must be > 0, got -1.0'."""
    flags = ["--" + f.replace("_", "-") for f in getattr(e, "fields", ()) if f in CONFIG_FLAGS]
    return f"{', '.join(flags)}: {e}" if flags else str(e)


def format_epoch(r: dict, epochs: int) -> str:
    """One progress line: epoch, train loss/acc, val loss/acc, learning rate, seconds."""
    width = len(str(epochs))
    line = f"epoch {r['epoch']:>{width}}/{epochs}  loss {r['loss']:.4f}  acc {r['acc']:.4f}"
    if r.get("val_loss") is not None:
        line += f"  val_loss {r['val_loss']:.4f}  val_acc {r['val_acc']:.4f}"
    return line + f"  lr {r['lr']:.2e}  {r['seconds']:.2f}s"


def progress_printer(epochs: int):
    """fit's callback that prints one line per epoch; it never stops training."""
    def show(record, model) -> bool:
        print(format_epoch(record, epochs), flush=True)
        return False
    return show


def is_idx_dir(path: Path) -> bool:
    return all((path / name).is_file() for name in FILES.values())


def load_folder(path: Path):
    """(images uint8, labels) from an IDX folder's train split or a PNG folder (recursively)."""
    if is_idx_dir(path):
        return ml.data.mnist.load_idx_pair(path / FILES["train_images"], path / FILES["train_labels"])
    from mnistlite.data.images import read_folder

    folder = read_folder(path, recursive=True)
    for problem in folder.problems:
        print(f"warning: skipped {problem['file']}: {problem['reason']}", file=sys.stderr)
    if not len(folder.labels):
        raise ml.DatasetError(f"{path}: no usable NNNNN_label_D.png images (and not an IDX folder)")
    return folder.images, folder.labels


@functools.cache
def mnist_uint8():
    """MNIST's train and test splits as uint8, read once even when training and testing both use them."""
    return ml.load_mnist(as_float=False)


def load_source(source: str, args):
    """Images (uint8 (n, 28, 28)) and labels from one --data source."""
    if source == "mnist":
        (x, y), _ = mnist_uint8()
        return x, y
    if source.startswith("s3://"):
        from mnistlite.quality.weekly import prepare_weeks

        try:
            weeks = prepare_weeks(source, args.weeks, Path(args.work_dir), endpoint_url=args.endpoint_url,
                                  max_bad_fraction=args.max_bad_fraction,
                                  log=lambda msg: print(msg, file=sys.stderr))
        except ValueError as e:   # a bad --weeks spec or s3:// URI is a usage error
            print(f"error: {e}", file=sys.stderr)
            raise SystemExit(2) from None
        print(f"{source}: {len(weeks.labels)} images from {', '.join(weeks.weeks)}")
        return weeks.images, weeks.labels
    path = Path(source)
    if not path.is_dir():
        raise ml.DatasetError(f"--data {path}: no such folder")
    return load_folder(path)


def load_training_data(args):
    """Training images and labels from every --data source, concatenated (default: MNIST's train split)."""
    parts = [load_source(source, args) for source in (args.data or ["mnist"])]
    if len(parts) == 1:
        return parts[0]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def load_test_data(args):
    """Test images and labels: --test-data, the first IDX folder's test split, or the MNIST test set."""
    if args.test_data:
        path = Path(args.test_data)
        if is_idx_dir(path):
            return ml.data.mnist.load_idx_pair(path / FILES["test_images"], path / FILES["test_labels"])
        return load_folder(path)
    for source in args.data or []:
        if not source.startswith("s3://") and source != "mnist" and is_idx_dir(Path(source)):
            path = Path(source)
            return ml.data.mnist.load_idx_pair(path / FILES["test_images"], path / FILES["test_labels"])
    _, (x, y) = mnist_uint8()
    return x, y


def source_date(environ) -> str | None:
    """SOURCE_DATE_EPOCH (reproducible-builds.org: seconds since 1970, e.g. the commit's time) as ISO
    8601 UTC, or None when unset. ValueError when it is not a whole number of seconds."""
    raw = (environ.get("SOURCE_DATE_EPOCH") or "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise ValueError(f"SOURCE_DATE_EPOCH must be whole seconds since 1970 (git log -1 --format=%ct), "
                         f"got {raw!r}")
    return datetime.fromtimestamp(int(raw), timezone.utc).isoformat(timespec="seconds")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    show_library_log()
    try:
        config = make_config(args)
        created = source_date(os.environ)
    except ValueError as e:
        print(f"error: {config_error(e)}", file=sys.stderr)
        return 2
    try:
        images, labels = load_training_data(args)
        test_images, test_labels = load_test_data(args)
    except (ml.DatasetError, ml.IDXError, OSError, RuntimeError) as e:
        print(f"error: {s3_message(e)}", file=sys.stderr)
        return 1
    out = Path(args.out)
    metrics_path = Path(args.metrics) if args.metrics else out.with_suffix(".metrics.json")
    progress = [] if args.quiet else [progress_printer(config.epochs)]
    try:
        model, history, report = ml.fit_recipe(config, images, labels, test_images, test_labels,
                                               threads=args.threads, callbacks=progress)
    except ml.ConfigError as e:
        print(f"error: {config_error(e)}", file=sys.stderr)
        return 2
    except ml.TrainingDiverged as e:
        print(f"error: {e} (--lr)", file=sys.stderr)
        return 1
    except ValueError as e:  # data the model cannot train on, such as labels out of range
        print(f"error: {e}", file=sys.stderr)
        return 1
    report["peak_rss_mb"] = peak_rss_mb()
    report["trained_at"] = utc_now()
    report["created"] = created or report["trained_at"]   # what the model file records
    model.metadata["metrics"] = model_metrics(report)      # without the per-run facts
    ml.save(model, out, float16=args.float16, created=report["created"])
    report["model_file"] = str(out)
    report["model_bytes"] = os.path.getsize(out)
    report["model_sha256"] = ml.serialize.file_sha256(out)
    atomic_write_bytes(metrics_path, (json.dumps(report, indent=2) + "\n").encode())
    if config.augment and report["augment_reach"] < 0.9:
        print(f"note: {1 - report['augment_reach']:.0%} of the training images fill their frame (ink on the "
              "outermost pixels); the --augment distortions pass those through unchanged")
    changes = ", ".join(f"{n} from epoch {e}" for e, n in report["blas_thread_changes"])
    print(f"BLAS threads: {report['blas_threads']} ({report['blas_threads_reason']})"
          + (f", then {changes}" if changes else ""))
    print(f"test accuracy {report['test_accuracy']:.4f}  fit {report['train_seconds']:.1f}s  "
          f"peak RSS {report['peak_rss_mb']:.0f} MB  -> {out} ({report['model_bytes'] / 1024:.0f} KB), "
          f"{metrics_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
