"""Benchmark training and inference: the figures in the training table of docs/performance.md.

Usage:
  python benchmarks/bench_train.py [--data DIR] [--skip-default] [--torch [--rounds N]] [--out bench.json]

Trains the reference configuration (784-128-10, Adam 1e-3, batch 32, 5 epochs) and the default
recipe, each in its own process (so peak RSS is that run's alone), then times model load and
single-sample predict. --torch also times the same reference configuration in PyTorch eager
mode (1 and 2 threads) when torch is importable and prints the ratio; --rounds N makes that N
alternations of the reference fit and PyTorch, one ratio each and their median, since a shared
machine's speed drifts between runs. Prints Markdown tables headed by the CPU model and
OpenBLAS's kernel choice.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402

import mnistlite as ml  # noqa: E402


def run_train(recipe: str, data: str | None, workdir: Path) -> dict:
    out, metrics = workdir / f"{recipe}.npz", workdir / f"{recipe}.json"
    cmd = [sys.executable, str(HERE.parent / "scripts" / "train.py"), "--recipe", recipe, "--out", str(out),
           "--metrics", str(metrics), "--quiet"]
    if data:
        cmd += ["--data", data]
    subprocess.run(cmd, check=True)
    result = json.loads(metrics.read_text())
    result["path"] = str(out)
    return result


def time_inference(path: str) -> dict:
    t0 = time.perf_counter()
    for _ in range(20):
        model = ml.load(path)
    load_ms = (time.perf_counter() - t0) / 20 * 1e3
    (_, _), (xt, _) = ml.load_mnist()
    one = xt[:1].copy()
    model.predict(one)
    reps = 20000
    t0 = time.perf_counter()
    for _ in range(reps):
        model.predict(one)
    single_us = (time.perf_counter() - t0) / reps * 1e6
    t0 = time.perf_counter()
    model.predict(xt)
    batch_ms = (time.perf_counter() - t0) * 1e3
    return {"load_ms": round(load_ms, 2), "predict_one_us": round(single_us, 1),
            "predict_10k_ms": round(batch_ms, 1), "file_kb": round(os.path.getsize(path) / 1024, 1)}


def torch_reference(data: str | None, threads: int = 1) -> dict | None:
    """The same reference configuration in PyTorch eager with ``threads`` intra-op threads, if installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)
    torch.set_num_threads(threads)
    (x, y), (xt, yt) = ml.load_mnist(data)
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    net = torch.nn.Sequential(torch.nn.Linear(784, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    t0 = time.perf_counter()
    for _ in range(5):
        order = torch.randperm(len(x))
        for i in range(0, len(x), 32):
            idx = order[i:i + 32]
            opt.zero_grad()
            loss_fn(net(x[idx]), y[idx]).backward()
            opt.step()
    seconds = time.perf_counter() - t0
    with torch.no_grad():
        acc = (net(torch.from_numpy(xt)).argmax(1).numpy() == yt).mean()
    return {"train_seconds": round(seconds, 2), "test_accuracy": float(acc), "torch": torch.__version__,
            "threads": threads}


def machine() -> dict:
    """CPU model, core count, numpy version and the BLAS numpy uses (with OpenBLAS's kernel family)."""
    from machine import cpu_model
    from threadpoolctl import threadpool_info

    blas = next((f"{i['internal_api']} {i['version']} ({i.get('architecture')} kernels)"
                 for i in threadpool_info() if i["user_api"] == "blas"), "unknown")
    return {"cpu": cpu_model(), "cpus": os.cpu_count(), "numpy": np.__version__, "blas": blas}


def ratio_rounds(data: str | None, workdir: Path, first: dict, torch_first: list, rounds: int) -> list[dict]:
    """The ratio of the reference fit to PyTorch's best, for the run already made (``first``, ``torch_first``)
    and ``rounds - 1`` more alternations of a fresh reference fit and PyTorch with 1 and 2 threads."""
    out = []
    ours, theirs = first["train_seconds"], [t["train_seconds"] for t in torch_first]
    for i in range(rounds):
        if i:
            ours = run_train("reference", data, workdir)["train_seconds"]
            theirs = [torch_reference(data, n)["train_seconds"] for n in (1, 2)]
        out.append({"round": i + 1, "mnistlite_s": ours, "torch_s": theirs, "ratio": ours / min(theirs)})
        print(f"round {i + 1}: mnistlite {ours:.2f} s, PyTorch {' / '.join(f'{t:.2f}' for t in theirs)} s "
              f"(1 / 2 threads), ratio {out[-1]['ratio']:.3f}", file=sys.stderr, flush=True)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", help="MNIST IDX folder (default: $MNISTLITE_DATA_DIR / load_mnist)")
    p.add_argument("--skip-default", action="store_true", help="only the reference configuration")
    p.add_argument("--torch", action="store_true",
                   help="also time PyTorch eager on the reference configuration")
    p.add_argument("--rounds", type=int, default=1,
                   help="with --torch: N alternations of the reference fit and PyTorch, one ratio each")
    p.add_argument("--out", help="write all figures as JSON here")
    args = p.parse_args(argv)
    if args.rounds < 1:
        p.error(f"--rounds must be >= 1, got {args.rounds}")
    results = {"machine": machine()}
    with tempfile.TemporaryDirectory() as tmp:
        recipes = ["reference"] + ([] if args.skip_default else ["default"])
        for recipe in recipes:
            r = run_train(recipe, args.data, Path(tmp))
            r.update(time_inference(r["path"]))
            results[recipe] = r
        if args.torch:
            results["torch_reference"] = [torch_reference(args.data, n) for n in (1, 2)]
            if all(results["torch_reference"]):  # None where torch is not installed
                results["ratio_rounds"] = ratio_rounds(args.data, Path(tmp), results["reference"],
                                                       results["torch_reference"], args.rounds)
    m = results["machine"]
    print(f"Machine: {m['cpu']}, {m['cpus']} cores; numpy {m['numpy']} with {m['blas']}\n")
    print("| run | test acc | fit s | s/epoch | peak RSS MB | file KB | load ms | predict 1 us |")
    print("|---|---|---|---|---|---|---|---|")
    for recipe in ("reference", "default"):
        r = results.get(recipe)
        if r:
            print(f"| {recipe} | {r['test_accuracy']:.4f} | {r['train_seconds']:.1f} | "
                  f"{r['train_seconds'] / r['epochs']:.2f} | {r['peak_rss_mb']:.0f} | {r['file_kb']:.0f} | "
                  f"{r['load_ms']:.2f} | {r['predict_one_us']:.1f} |")
    for t in results.get("torch_reference") or []:
        if t:
            print(f"| PyTorch {t['torch']} eager ({t['threads']} thread), reference | "
                  f"{t['test_accuracy']:.4f} | {t['train_seconds']:.1f} | "
                  f"{t['train_seconds'] / 5:.2f} | | | | |")
    rounds = results.get("ratio_rounds")
    if rounds:
        ratios = sorted(r["ratio"] for r in rounds)
        print("\n| round | mnistlite fit s | PyTorch 1 / 2 threads s | ratio to PyTorch's best |")
        print("|---|---|---|---|")
        for r in rounds:
            theirs = " / ".join(f"{t:.2f}" for t in r["torch_s"])
            print(f"| {r['round']} | {r['mnistlite_s']:.2f} | {theirs} | {r['ratio']:.3f} |")
        print(f"\nratio over {len(ratios)} rounds: median {statistics.median(ratios):.3f} "
              f"(min {ratios[0]:.3f}, max {ratios[-1]:.3f})")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
