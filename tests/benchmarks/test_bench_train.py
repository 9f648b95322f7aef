"""bench_train's machine line names the CPU and OpenBLAS's kernels, and --rounds is checked.

Its figures go into docs/seedfit.md with the CPU model beside each: a line naming another machine, or
another BLAS kernel family than the one that ran, would make them unreadable.
"""
from __future__ import annotations

from pathlib import Path

import bench_train
import pytest
from threadpoolctl import threadpool_info


def test_machine_names_this_cpu_and_the_blas_kernels():
    m = bench_train.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists() and "model name" in cpuinfo.read_text():
        assert m["cpu"] in cpuinfo.read_text() and m["cpu"] != "unknown"
    blas = next(i for i in threadpool_info() if i["user_api"] == "blas")
    assert m["blas"].startswith(f"{blas['internal_api']} {blas['version']}")
    assert f"({blas.get('architecture')} kernels)" in m["blas"]


def test_rounds_must_be_positive(capsys):
    with pytest.raises(SystemExit) as e:
        bench_train.main(["--skip-default", "--torch", "--rounds", "0"])
    assert e.value.code == 2
    assert "--rounds must be >= 1, got 0" in capsys.readouterr().err
