"""A real Prometheus on 127.0.0.1 for the rehearsal: Debian's ``prometheus`` (tools/install-prometheus.sh)
scraping one target every second and evaluating the chart's alert rules (chart/files/alerts.yml).

The rules are loaded as they are, except that every ``for:`` becomes ``FOR_SECONDS``: the rehearsal
compresses time so an alert that would wait minutes in production is seen within seconds; the
expressions and thresholds are the production ones.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from .common import SOURCE_ROOT as ROOT
from .proc import free_port, stop_group

RULES = ROOT / "chart" / "files" / "alerts.yml"
FOR_SECONDS = 3
JOB = "mnistlite"


class PrometheusError(RuntimeError):
    """Prometheus is missing, did not start, or its API answered unexpectedly; the message says which."""


def compressed_rules(text: str, seconds: int = FOR_SECONDS) -> str:
    """The rule file with every ``for:`` duration replaced by ``seconds``."""
    return re.sub(r"^(\s+for:\s*)\S+\s*$", rf"\g<1>{seconds}s", text, flags=re.M)


class LocalPrometheus:
    """``prometheus`` on a free 127.0.0.1 port, its data and log in ``work``; scrapes ``target``
    (host:port) at ``metrics_path`` every second, job "mnistlite"."""

    def __init__(self, work: Path, say):
        self.work, self.say = Path(work), say
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def start(self, target: str, metrics_path: str = "/metrics", timeout: float = 60.0) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise PrometheusError("prometheus is not installed: run `make prometheus` "
                                  "(Debian's prometheus package, as root)")
        self.stop()
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir(parents=True)
        (self.work / "alerts.yml").write_text(compressed_rules(RULES.read_text()))
        config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
                  "rule_files": [str(self.work / "alerts.yml")],
                  "scrape_configs": [{"job_name": JOB, "metrics_path": metrics_path,
                                      "static_configs": [{"targets": [target]}]}]}
        (self.work / "prometheus.yml").write_text(json.dumps(config, indent=2))   # JSON is YAML
        listen = f"127.0.0.1:{free_port()}"
        self.url = f"http://{listen}"
        log = self.work / "prometheus.log"
        cmd = [binary, f"--config.file={self.work / 'prometheus.yml'}",
               f"--storage.tsdb.path={self.work / 'data'}", f"--web.listen-address={listen}"]
        self.say(f"$ prometheus --config.file=... --web.listen-address={listen}   (log: {log}; "
                 f"rules: {RULES.relative_to(ROOT)}, every `for:` {FOR_SECONDS} s)")
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(cmd, cwd=self.work, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = log.read_text(errors="replace").strip().splitlines()[-2:]
                raise PrometheusError(f"prometheus exited with {self.proc.returncode}: {' | '.join(tail)}")
            try:
                if self.query(f'up{{job="{JOB}"}}') == 1.0:
                    return
            except PrometheusError:
                pass
            time.sleep(0.5)
        raise PrometheusError(f"prometheus on {self.url} did not scrape {target} within {timeout:.0f} s")

    def api(self, path: str, **params) -> dict:
        url = f"{self.url}/api/v1/{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                doc = json.loads(r.read())
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise PrometheusError(f"GET {url} failed: {e}") from None
        if doc.get("status") != "success":
            raise PrometheusError(f"GET {url}: {doc.get('error') or doc}")
        return doc["data"]

    def query(self, promql: str) -> float | None:
        """The value of an instant query with at most one series (None: no series)."""
        result = self.api("query", query=promql)["result"]
        if len(result) > 1:
            raise PrometheusError(f"{promql} gave {len(result)} series, expected at most one")
        return float(result[0]["value"][1]) if result else None

    def alerts(self) -> list[dict]:
        """The active alerts (pending and firing), as /api/v1/alerts lists them."""
        return self.api("alerts")["alerts"]

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        stop_group(proc, grace=10)
