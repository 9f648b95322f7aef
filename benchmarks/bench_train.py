"""Benchmark training and inference: the figures in the training table of docs/performance.md.

Usage:
  python benchmarks/bench_train.py [--data DIR] [--skip-default] [--torch [--rounds N]] [--out bench.json]
  python benchmarks/bench_train.py --contention [--epochs 4] [--join-after 3]

Trains the reference configuration (784-128-10, Adam 1e-3, batch 32, 5 epochs) and the default
recipe, each in its own process (so peak RSS is that run's alone), then times model load and
single-sample predict. --torch also times the same reference configuration in PyTorch eager
mode (1 and 2 threads) when torch is importable and prints the ratio; --rounds N makes that N
alternations of the reference fit and PyTorch, one ratio each and their median, since a shared
machine's speed drifts between runs. Prints Markdown tables headed by the CPU model and
OpenBLAS's kernel choice, and the default fit's time as a multiple of the reference fit's.
--contention times the default recipe (--epochs of it) twice: alone with one BLAS thread, then with
the thread policy free while one CPU hog per core joins --join-after seconds into the fit; it prints
the second's time as a multiple of the first (a fair share of two cores among three busy processes
is 1.5x).
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


def train_cmd(recipe: str, data: str | None, workdir: Path, *flags) -> tuple[list, Path, Path]:
    out, metrics = workdir / f"{recipe}.npz", workdir / f"{recipe}.json"
    cmd = [sys.executable, str(HERE.parent / "scripts" / "train.py"), "--recipe", recipe, "--out", str(out),
           "--metrics", str(metrics), "--quiet", *flags]
    return cmd + (["--data", data] if data else []), out, metrics


def run_train(recipe: str, data: str | None, workdir: Path) -> dict:
    cmd, out, metrics = train_cmd(recipe, data, workdir)
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


def contention(data: str | None, workdir: Path, epochs: int, join_after: float) -> dict:
    """The default fit alone on one thread, then unpinned with one CPU hog per core joining after
    ``join_after`` s. The hogs are bounded: they end with the fit, or after 30 minutes at the latest."""
    flags = ["--epochs", str(epochs)]
    cmd, _, metrics = train_cmd("default", data, workdir, *flags, "--threads", "1")
    subprocess.run(cmd, check=True)
    quiet = json.loads(metrics.read_text())
    cmd, _, metrics = train_cmd("default", data, workdir, *flags)
    fit = subprocess.Popen(cmd)
    time.sleep(join_after)
    hogs = [subprocess.Popen(["timeout", "1800", sys.executable, "-c", "while True: pass"])
            for _ in range(os.cpu_count() or 1)]
    try:
        if fit.wait() != 0:
            raise SystemExit("the contended fit failed")
    finally:
        # SIGTERM, not SIGKILL: `timeout` forwards it to the hog; a killed `timeout` would orphan it.
        for h in hogs:
            h.terminate()
        for h in hogs:
            h.wait()
    busy = json.loads(metrics.read_text())
    return {"epochs": epochs, "join_after_s": join_after, "hogs": len(hogs),
            "quiet_1_thread_s": quiet["train_seconds"], "contended_s": busy["train_seconds"],
            "ratio": round(busy["train_seconds"] / quiet["train_seconds"], 3),
            "threads": busy["blas_threads"], "thread_changes": busy["blas_thread_changes"]}


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
    p.add_argument("--contention", action="store_true",
                   help="only the default fit, quiet on one thread and then with CPU hogs joining")
    p.add_argument("--epochs", type=int, default=4, help="with --contention: epochs of the default recipe")
    p.add_argument("--join-after", type=float, default=3.0, help="with --contention: seconds before the hogs")
    p.add_argument("--out", help="write all figures as JSON here")
    args = p.parse_args(argv)
    if args.contention:
        m = machine()
        with tempfile.TemporaryDirectory() as tmp:
            c = contention(args.data, Path(tmp), args.epochs, args.join_after)
        print(f"Machine: {m['cpu']}, {m['cpus']} cores; numpy {m['numpy']} with {m['blas']}\n")
        print(f"default recipe, {c['epochs']} epochs: quiet on 1 thread {c['quiet_1_thread_s']:.1f} s; "
              f"{c['hogs']} hogs joining after {c['join_after_s']:g} s: {c['contended_s']:.1f} s = "
              f"{c['ratio']:.2f}x (started with {c['threads']} threads, changes {c['thread_changes']})")
        if args.out:
            Path(args.out).write_text(json.dumps({"machine": m, "contention": c}, indent=2) + "\n")
        return 0
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
    if "default" in results:
        d, r = results["default"], results["reference"]
        ratio = d["train_seconds"] / r["train_seconds"]
        cpu = d["train_cpu_seconds"] / r["train_cpu_seconds"]
        print(f"\ndefault fit / reference fit in this run: {ratio:.1f}x in wall seconds "
              f"({d['train_seconds']:.1f} / {r['train_seconds']:.1f}), {cpu:.1f}x in CPU seconds "
              f"({d['train_cpu_seconds']:.1f} / {r['train_cpu_seconds']:.1f})")
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
