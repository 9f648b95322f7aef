"""What the CLIs share: one-line errors on stderr, the library's log shown, flag hints, peak memory.

The library says what is wrong in its own terms; these helpers add the flag a user would change.
"""
from __future__ import annotations

import logging
import resource
import sys
from pathlib import Path

# The source checkout these tools run from (an editable install): the rehearsal and the local service
# run its scripts/, service/ and tests/data, as the workflows do.
SOURCE_ROOT = Path(__file__).resolve().parents[2]


def fail(message, prog: str = "error", code: int = 1) -> int:
    """Print ``prog: message`` on stderr as one line; return ``code`` for ``main`` to exit with."""
    print(f"{prog}: {message}", file=sys.stderr)
    return code


class _Stderr(logging.Handler):
    """Each record's message as one line on the sys.stderr of the moment (tests swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        print(record.getMessage(), file=sys.stderr, flush=True)


def show_library_log() -> None:
    """Show mnistlite's log records (downloads, skipped weeks) on stderr as plain lines; idempotent."""
    log = logging.getLogger("mnistlite")
    if not any(h.get_name() == "mnistlite-cli" for h in log.handlers):
        handler = _Stderr()
        handler.set_name("mnistlite-cli")
        log.addHandler(handler)
    log.setLevel(logging.INFO)


def s3_message(e: Exception) -> str:
    """An S3Error's one-line message, naming --endpoint-url when the endpoint is what to check."""
    from mnistlite.data.s3 import EndpointUnreachable

    return f"{e}; set it with --endpoint-url" if isinstance(e, EndpointUnreachable) else str(e)


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB: VmHWM where /proc has it. ru_maxrss is the fallback
    only, because Linux carries it across exec: a CLI started by a big process reports that one's peak."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


# What fixes a model file that is missing or damaged, for the CLIs that read one.
MODEL_FILE_HINT = "re-train it (scripts/train.py) or fetch a good copy (scripts/registry.py fetch)"
