"""How many BLAS threads a fit should use: a run-time policy, kept out of the numerics (``nn/``).

OpenBLAS threads wait for each other by spinning, so a thread whose core is busy with other work stalls
every product. A fit therefore takes one thread per CPU it may use that is idle, and, unless the count was
pinned, ``ContentionWatch`` drops to fewer threads between epochs when other work takes the cores.
"""
from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path

MAX_THREADS = 4
CGROUP = Path("/sys/fs/cgroup")


def _cgroup_dirs(proc_cgroup: Path = Path("/proc/self/cgroup")) -> list[Path]:
    """The cgroup folders that limit this process, innermost first (v2 unified, and v1's cpu controller)."""
    dirs = []
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return dirs
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            base = CGROUP
        elif "cpu" in controllers.split(","):
            base = CGROUP / controllers if (CGROUP / controllers).is_dir() else CGROUP / "cpu"
        else:
            continue
        here = base / path.lstrip("/")
        while True:
            dirs.append(here)
            if here == base:
                break
            here = here.parent
    return dirs


def cpu_quota(dirs: list[Path] | None = None) -> float | None:
    """The CPU quota of this process's cgroups in CPUs (cgroup v2 ``cpu.max`` or v1 ``cpu.cfs_quota_us``),
    the tightest along the path; None when there is none."""
    quotas = []
    for d in _cgroup_dirs() if dirs is None else dirs:
        try:
            if (d / "cpu.max").is_file():
                quota, period = (d / "cpu.max").read_text().split()[:2]
                if quota != "max":
                    quotas.append(int(quota) / int(period))
            elif (d / "cpu.cfs_quota_us").is_file():
                quota = int((d / "cpu.cfs_quota_us").read_text())
                if quota > 0:
                    quotas.append(quota / int((d / "cpu.cfs_period_us").read_text()))
        except (OSError, ValueError):
            continue
    return min(quotas) if quotas else None


def usable_cpus() -> float:
    """The CPUs this process may use: its affinity mask, capped by its cgroup quota."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = cpu_quota()
    return min(float(n), quota) if quota else float(n)


def _cpu_ticks() -> tuple[int, int]:
    """(idle + iowait, all) jiffies summed over the machine's cores, from /proc/stat."""
    with open("/proc/stat") as f:
        ticks = [int(t) for t in f.readline().split()[1:]]
    return ticks[3] + ticks[4], sum(ticks)


def idle_cores(interval: float = 0.1) -> float:
    """How many cores sat idle over the next ``interval`` seconds, from /proc/stat; where that file is
    missing (not Linux), the core count minus the one-minute load average."""
    cores = os.cpu_count() or 1
    try:
        idle0, all0 = _cpu_ticks()
        time.sleep(interval)
        idle1, all1 = _cpu_ticks()
    except (OSError, ValueError, IndexError):
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
        return max(0.0, cores - load)
    return cores * (idle1 - idle0) / max(all1 - all0, 1)


def children_cpu() -> float:
    """CPU seconds of this process's children that have exited and been waited for."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def own_cpu() -> float:
    """CPU seconds of this process (every thread) and of its children, running or waited for: the
    work a fit does itself, its batch producer included (``nn/producer.py``)."""
    total = time.process_time() + children_cpu()
    try:
        tasks = os.listdir("/proc/self/task")
        kids = {pid for t in tasks for pid in Path(f"/proc/self/task/{t}/children").read_text().split()}
        for pid in kids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        pass
    return total


def blas_threads(idle: float | None = None) -> int:
    """BLAS threads for ``idle`` free cores (``idle_cores()`` by default): at least 1, at most 4; a core
    counts when it is at least 75% idle."""
    if idle is None:
        idle = idle_cores()
    return max(1, min(int(idle + 0.25), MAX_THREADS))


@dataclass
class ThreadChoice:
    """How many BLAS threads a fit starts with, whether that count is pinned, and why."""
    threads: int
    pinned: bool
    reason: str
    changes: list = field(default_factory=list)   # [(epoch, threads)] made by ContentionWatch

    def as_dict(self) -> dict:
        return {"blas_threads": self.threads, "blas_threads_pinned": self.pinned,
                "blas_threads_reason": self.reason, "blas_thread_changes": [list(c) for c in self.changes]}


def resolve_threads(threads: int | None = None, environ=None) -> ThreadChoice:
    """The thread count for a fit: ``threads`` (the --threads flag) or ``OPENBLAS_NUM_THREADS`` when set,
    pinned; otherwise one per idle core among the CPUs this process may use (affinity, cgroup quota)."""
    environ = os.environ if environ is None else environ
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads!r}")
        return ThreadChoice(int(threads), True, "--threads")
    pinned = environ.get("OPENBLAS_NUM_THREADS", "").strip()
    if pinned:
        try:
            n = int(pinned)
        except ValueError:
            n = 0
        if n < 1:
            raise ValueError(f"OPENBLAS_NUM_THREADS must be an integer >= 1, got {pinned!r}")
        return ThreadChoice(n, True, "OPENBLAS_NUM_THREADS")
    cpus = usable_cpus()
    idle = min(idle_cores(), cpus)
    return ThreadChoice(blas_threads(idle), False, f"{idle:.1f} of {cpus:g} usable CPUs idle")


class ContentionWatch:
    """A fit callback: after each epoch, compare the cores other processes took during it with the CPUs
    this one may use, and lower the BLAS threads (or raise them again, up to the start) to fit the rest.

    Only for unpinned counts: changing threads changes the weights' rounding.
    """

    needs_validation = False   # it reads the clock, not the epoch's validation figures

    def __init__(self, choice: ThreadChoice, cpus: float | None = None):
        assert not choice.pinned
        self.choice, self.threads, self.start = choice, choice.threads, choice.threads
        self.cpus = usable_cpus() if cpus is None else cpus
        self._mark()

    def _mark(self):
        self._t, self._own = time.monotonic(), own_cpu()
        try:
            self._idle, self._all = _cpu_ticks()
        except (OSError, ValueError, IndexError):
            self._all = None

    def others(self) -> float | None:
        """Cores' worth of work other processes did since the last mark (this one's children, such as the
        batch producer, count as its own); None without /proc/stat."""
        if self._all is None:
            return None
        wall, own = time.monotonic() - self._t, own_cpu() - self._own
        idle, total = _cpu_ticks()
        cores = os.cpu_count() or 1
        busy = cores * (1 - (idle - self._idle) / max(total - self._all, 1))
        return max(0.0, busy - own / max(wall, 1e-6))

    def __call__(self, record: dict, model) -> bool:
        others = self.others()
        if others is not None:
            free = max(0.0, min(self.cpus, os.cpu_count() or 1) - others)
            want = max(1, min(int(free + 0.25), self.start))
            if want != self.threads:
                from threadpoolctl import threadpool_limits

                threadpool_limits(limits=want, user_api="blas")
                self.threads = want
                self.choice.changes.append((record["epoch"], want))
        self._mark()
        return False


# Environment variables that change which kernels OpenBLAS and numpy run, and so the bits of a fit.
KERNEL_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_VERBOSE", "NPY_DISABLE_CPU_FEATURES",
              "NPY_ENABLE_CPU_FEATURES")


def blas_facts(threads: int, environ=None) -> dict:
    """What decides a fit's BLAS results besides the data and the config: the thread count, the BLAS
    library, its version and kernel family (threadpoolctl), and any KERNEL_ENV variable that is set.

    Nothing per machine path or per run: two fits with equal facts on one machine give equal bits.
    """
    from threadpoolctl import threadpool_info

    environ = os.environ if environ is None else environ
    libs = [{k: lib.get(k) for k in ("internal_api", "version", "architecture", "threading_layer")}
            for lib in threadpool_info() if lib.get("user_api") == "blas"]
    return {"threads": int(threads), "libraries": sorted(libs, key=lambda d: str(d)),
            "environment": {k: environ[k] for k in KERNEL_ENV if environ.get(k)}}
