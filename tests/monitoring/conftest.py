"""Fixtures of the monitoring tests: Debian's promtool (tools/install-prometheus.sh installs it)."""
from __future__ import annotations

import os
import shutil

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(binary: str) -> str:
    """The path of a Prometheus binary; skip locally (fail under CI=true) when it is missing."""
    path = shutil.which(binary)
    if path is None:
        msg = (f"{binary} not found: run `bash tools/install-prometheus.sh` as root "
               "(Debian's prometheus package)")
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture(scope="session")
def promtool() -> str:
    return need("promtool")
