"""The rehearsal's ``monitor`` stage: production served under gunicorn, watched by a real Prometheus
with the chart's alert rules (mnistlite/cli/prometheus.py), then the weekly field report.

1. Fetch production from the registry and serve it (2 gunicorn workers, multiprocess metrics).
2. Prometheus on 127.0.0.1 scrapes it every second and evaluates chart/files/alerts.yml.
3. Ordinary digits (MNIST test digits, mixed): /metrics must count every answer across both workers, and
   no alert may be pending or firing.
4. A drifted stream (the same kind of digits transposed: a source the model never trained on): the
   drift or abstain alert must be *firing* on Prometheus's /api/v1/alerts within DEADLINE seconds.
5. scripts/monitor.py on a new week of MNIST test digits must pass (exit 0), and on the same digits as a
   slanted population writes them must fail (exit 1).
"""
from __future__ import annotations

import json
import time
import urllib.request

import numpy as np

from .local_service import ServiceError
from .prometheus import FOR_SECONDS, LocalPrometheus, PrometheusError

DEADLINE = 60.0          # seconds from the drifted stream's start to a firing alert
BATCH = 100              # images per JSON request
ORDINARY, DRIFTED = 2000, 2000
WATCHED = ("MnistliteDrift", "MnistliteAbstainRatioHigh")


class MonitorFailed(RuntimeError):
    """The monitor stage did not behave; the message is the report's detail."""


def send(url: str, images: np.ndarray) -> int:
    """POST float32 (n, 784) images to /predict as JSON batches; the number of answers."""
    answered = 0
    for i in range(0, len(images), BATCH):
        body = json.dumps({"instances": images[i:i + BATCH].round(4).tolist()}).encode()
        req = urllib.request.Request(url + "/predict", data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            answered += len(json.loads(r.read())["predictions"])
    return answered


def scraped_total(service) -> float:
    """mnistlite_confidence_count as one scrape of /metrics reports it (all workers merged)."""
    with urllib.request.urlopen(service.metrics_url + "/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("mnistlite_confidence_count "):
                return float(line.split()[1])
    raise MonitorFailed("/metrics has no mnistlite_confidence_count")


def wait_for(what: str, check, timeout: float):
    """Poll ``check()`` each 0.5 s until it returns something truthy; MonitorFailed after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.5)
    raise MonitorFailed(f"{what} did not happen within {timeout:.0f} s")


def run(r) -> str:
    """The stage, on a ``pipeline.Rehearsal`` ``r``; returns the report's detail."""
    import mnistlite as ml

    _, (xt, _) = ml.load_mnist(r.mnist)
    mixed = xt[np.random.default_rng(0).permutation(len(xt))]
    ordinary = mixed[:ORDINARY]
    drifted = mixed[ORDINARY:ORDINARY + DRIFTED].reshape(-1, 28, 28).transpose(0, 2, 1).reshape(-1, 784)
    model = r.dir / "serve" / "production-monitor.npz"
    r.registry("fetch", "--out", model)
    prom = LocalPrometheus(r.dir / "prometheus", r.say)
    try:
        r.service.start(model)
        prom.start(r.service.metrics_url.removeprefix("http://"))
        quiet = watch_ordinary(r, prom, ordinary)
        fired = watch_drift(r, prom, drifted)
    except (ServiceError, PrometheusError) as e:
        raise MonitorFailed(str(e)) from None
    finally:
        prom.stop()
        r.service.stop()
    return f"{quiet}; {fired}; {field_report(r)}"


def watch_ordinary(r, prom: LocalPrometheus, images: np.ndarray) -> str:
    sent = send(r.service.url, images)
    merged = scraped_total(r.service)
    if merged != sent:
        raise MonitorFailed(f"/metrics counts {merged:.0f} answers of the {sent} sent: workers not merged")
    wait_for("Prometheus scraping every answer",
             lambda: (prom.query("sum(mnistlite_confidence_count)") or 0) >= sent, 30)
    psi = {s: prom.query(f'max(mnistlite_drift_psi{{signal="{s}"}})') for s in ("class", "confidence")}
    if None in psi.values():
        raise MonitorFailed(f"no drift PSI exported after {sent} answers: does the model file hold a "
                            f"training reference? {psi}")
    time.sleep(FOR_SECONDS + 3)   # a few evaluations (1 s each) past every rule's compressed `for:`
    active = prom.alerts()
    if active:
        names = ", ".join(f"{a['labels']['alertname']} ({a['state']})" for a in active)
        raise MonitorFailed(f"alerts active on ordinary digits: {names}; PSI {psi}")
    r.say(f"ordinary digits: {sent} answers, merged /metrics = {merged:.0f}; PSI class {psi['class']:.3f}, "
          f"confidence {psi['confidence']:.3f}; no alert")
    return (f"{sent} ordinary digits: no alert (PSI class {psi['class']:.3f}, "
            f"confidence {psi['confidence']:.3f}; 2 workers merged)")


def watch_drift(r, prom: LocalPrometheus, images: np.ndarray) -> str:
    t0 = time.monotonic()
    sent = send(r.service.url, images)
    r.say(f"drifted stream: {sent} transposed digits sent in {time.monotonic() - t0:.1f} s; "
          f"waiting for {' or '.join(WATCHED)} to fire")

    def firing():
        return [a for a in prom.alerts() if a["state"] == "firing" and a["labels"]["alertname"] in WATCHED]

    alerts = wait_for(f"{' or '.join(WATCHED)} firing", firing, max(1.0, DEADLINE - (time.monotonic() - t0)))
    seconds = time.monotonic() - t0
    a = alerts[0]
    what = f"{a['labels']['alertname']}{{signal={a['labels'].get('signal')}}}" if "signal" in a["labels"] \
        else a["labels"]["alertname"]
    r.say(f"{what} firing after {seconds:.1f} s: {a['annotations'].get('summary')}")
    return f"{sent} transposed digits: {what} firing on /api/v1/alerts after {seconds:.1f} s"


def field_report(r) -> str:
    """scripts/monitor.py on two new weeks of MNIST test digits the models never trained on: as MNIST's
    writers wrote them (must pass, exit 0) and as a slanted population writes them (must fail, exit 1)."""
    from .rehearsal import DATA_URI, REGISTRY_URI

    n = r.week_size
    for week, writers in ((4, "mnist"), (5, "slanted")):
        r.py("publish_week.py", "--data", r.mnist, "--split", "test", "--start", 5000, "--count", n,
             "--writers", writers, f"{DATA_URI}/week-{week}")
    outcome = []
    for week, expect in ((4, 0), (5, 1)):
        code, _ = r.py("monitor.py", DATA_URI, "--week", str(week), "--registry", REGISTRY_URI,
                       "--out", r.dir / "monitor" / f"week-{week}", expect=(expect,))
        outcome.append(f"week-{week} exit {code}")
    return "scripts/monitor.py: " + ", ".join(outcome) + " (slanted writers)"
