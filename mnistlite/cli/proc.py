"""Child processes the scripts start (SeaweedFS, gunicorn): stopping one with its whole group."""
from __future__ import annotations

import os
import signal
import subprocess


def stop_group(proc: subprocess.Popen | None, grace: float) -> None:
    """SIGTERM the process group of ``proc`` (started with ``start_new_session=True``), SIGKILL it
    after ``grace`` seconds; nothing if it already ended. Only that group is signalled."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
    except ProcessLookupError:
        pass
