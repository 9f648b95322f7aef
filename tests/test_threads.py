"""The BLAS thread policy (threads.py): pinned counts are kept, the CPUs a process may use bound the
rest, and a fit drops threads when other work takes the cores."""
from __future__ import annotations

import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from mnistlite import threads


def blas_threads_now() -> int:
    return next(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")


def test_the_flag_and_openblas_num_threads_pin_the_count():
    assert threads.resolve_threads(3, environ={"OPENBLAS_NUM_THREADS": "2"}).threads == 3
    choice = threads.resolve_threads(None, environ={"OPENBLAS_NUM_THREADS": "1"})
    assert (choice.threads, choice.pinned, choice.reason) == (1, True, "OPENBLAS_NUM_THREADS")
    with pytest.raises(ValueError, match="OPENBLAS_NUM_THREADS must be an integer >= 1, got 'x'"):
        threads.resolve_threads(None, environ={"OPENBLAS_NUM_THREADS": "x"})


def test_a_one_cpu_quota_gives_one_thread_even_on_an_idle_machine(monkeypatch):
    monkeypatch.setattr(threads, "cpu_quota", lambda dirs=None: 1.0)
    monkeypatch.setattr(threads, "idle_cores", lambda interval=0.1: 64.0)
    choice = threads.resolve_threads(None, environ={})
    assert (choice.threads, choice.pinned) == (1, False)
    assert "of 1 usable CPUs" in choice.reason


@pytest.mark.parametrize("files, quota", [
    ({"cpu.max": "100000 100000\n"}, 1.0),
    ({"cpu.max": "250000 100000\n"}, 2.5),
    ({"cpu.max": "max 100000\n"}, None),
    ({"cpu.cfs_quota_us": "50000\n", "cpu.cfs_period_us": "100000\n"}, 0.5),
    ({"cpu.cfs_quota_us": "-1\n", "cpu.cfs_period_us": "100000\n"}, None),
])
def test_cgroup_quotas_v1_and_v2(tmp_path, files, quota):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert threads.cpu_quota([tmp_path]) == quota


def test_the_tightest_quota_along_the_cgroup_path_wins(tmp_path):
    outer, inner = tmp_path, tmp_path / "pod"
    inner.mkdir()
    (outer / "cpu.max").write_text("100000 100000\n")
    (inner / "cpu.max").write_text("400000 100000\n")
    assert threads.cpu_quota([inner, outer]) == 1.0


def test_contention_watch_drops_to_one_thread_and_back(monkeypatch):
    choice = threads.ThreadChoice(2, False, "test")
    watch = threads.ContentionWatch(choice, cpus=2.0)
    load = iter([1.6, 1.0, 0.1])   # cores' worth of other work in three epochs
    monkeypatch.setattr(watch, "others", lambda: next(load))
    with threadpool_limits(limits=2, user_api="blas"):
        assert watch({"epoch": 1}, None) is False
        assert watch.threads == 1 and blas_threads_now() == 1
        watch({"epoch": 2}, None)
        assert watch.threads == 1
        watch({"epoch": 3}, None)
        assert watch.threads == 2 and blas_threads_now() == 2
    assert choice.changes == [(1, 1), (3, 2)]


def test_a_pinned_count_is_never_watched():
    with pytest.raises(AssertionError):
        threads.ContentionWatch(threads.ThreadChoice(2, True, "--threads"))
