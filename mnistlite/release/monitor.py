"""The weekly field report: score production (and the models before it) on a new labelled week.

``run`` fetches one week from S3, checks it with the data gate, scores each model on the week's good
images, appends the records to the field history in the registry bucket and judges production against
the ``MonitorPolicy``. A week the data gate rejects is not scored: its bad-file report goes next to the
week on S3 and the outcome carries the text of an issue for the data provider.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.fetch import fetch
from ..data.mnist import data_sha256
from ..data.s3 import make_client, parse_uri, s3_errors, week_number
from ..files import atomic_write_bytes, utc_now
from ..metrics import percent
from ..quality.honest import judge as judge_answers
from ..quality.validate import validate_folder, write_report
from .evaluation import TestSet, evaluate, load_model, load_test_set
from .field_history import FieldHistory
from .registry import Registry, model_key

RECORD_SCHEMA = "mnistlite.field/1"
_EPS = 1e-12


class MonitorError(ValueError):
    """The monitor could not run on its inputs (no such week, no production model, ...): one line."""


@dataclass(frozen=True)
class MonitorPolicy:
    """When production is fine in the field; accuracies and recalls are fractions in [0, 1]."""

    max_accuracy_drop: float = 0.02   # week accuracy may sit this far below the MNIST test accuracy
    max_recall_drop: float = 0.08     # per digit, week recall vs MNIST test recall
    min_digit_count: int = 20         # digits rarer than this in the week are not judged (too noisy)
    max_age_days: float = 90.0        # production older than this (by its creation time) fails
    max_models: int = 5               # production plus the models before it, newest first
    max_bad_fraction: float = 0.01    # the data gate's allowance of bad images in a week

    def __post_init__(self):
        for name in ("max_accuracy_drop", "max_recall_drop", "max_bad_fraction"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {v!r}")
        if self.max_age_days <= 0:
            raise ValueError(f"max_age_days must be > 0, got {self.max_age_days!r}")
        if self.min_digit_count < 1 or self.max_models < 1:
            raise ValueError(f"min_digit_count and max_models must be >= 1, got "
                             f"{self.min_digit_count!r} and {self.max_models!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class Outcome:
    """What ``run`` found. status: "pass", "fail" (production worse or too old) or "quarantined"."""

    status: str
    week: str
    checks: list = field(default_factory=list)        # [{name, passed, detail}] on production
    records: list = field(default_factory=list)       # this week's records, production first
    history: list = field(default_factory=list)       # the whole field history after the append
    validation: dict | None = None                    # the data gate's report (JSON document)
    report_uri: str | None = None                     # where the bad-file report went (quarantined)
    policy: dict = field(default_factory=dict)

    @property
    def reasons(self) -> list:
        return [f"{c['name']}: {c['detail']}" for c in self.checks if not c["passed"]]


def abstain_rate(model, images) -> float | None:
    """Share of the week's images the model abstains on ("unsure" or "not a digit"), as the service
    would answer them; None for a model without a calibration, which answers everything."""
    if getattr(model, "calibration", None) is None:
        return None
    return float(np.mean(judge_answers(model, images).verdict != 0))


def score(model, week: TestSet, baseline: TestSet) -> dict:
    """One model on the week's images and on MNIST's test set: the numbers a field record keeps."""
    m, _ = evaluate(model, week)
    b, _ = evaluate(model, baseline)
    return {"n": m["n"], "accuracy": m["accuracy"], "recall": m["per_class"]["recall"],
            "digit_counts": m["per_class"]["support"], "ece": m["ece"],
            "abstain_rate": abstain_rate(model, week.images),
            "mnist_accuracy": b["accuracy"], "mnist_recall": b["per_class"]["recall"]}


def _age_days(created: str | None, now: _dt.datetime) -> float | None:
    try:
        t = _dt.datetime.fromisoformat(str(created))
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=_dt.timezone.utc)
    return (now - t).total_seconds() / 86400


def judge(record: dict, policy: MonitorPolicy, now: _dt.datetime | None = None) -> list:
    """The production record's checks against the policy: [{name, passed, detail}]."""
    now = now or _dt.datetime.now(_dt.timezone.utc)
    acc, base = record["accuracy"], record["mnist_accuracy"]
    floor = base - policy.max_accuracy_drop
    checks = [{"name": "accuracy", "passed": acc + _EPS >= floor,
               "detail": f"week {percent(acc)} vs MNIST test {percent(base)} - margin "
                         f"{percent(policy.max_accuracy_drop)} = {percent(floor)}"}]
    pairs = enumerate(zip(record["recall"], record["digit_counts"], strict=True))
    drops = [(k, record["mnist_recall"][k] - r) for k, (r, n) in pairs if n >= policy.min_digit_count]
    bad = [(k, d) for k, d in drops if d > policy.max_recall_drop + _EPS]
    worst = max(drops, key=lambda t: t[1], default=None)
    detail = (f"largest recall drop {percent(max(worst[1], 0.0))} on digit {worst[0]}" if worst
              else f"no digit has {policy.min_digit_count} images this week") + \
        f" (allowed {percent(policy.max_recall_drop)})"
    if bad:
        detail += "; over the limit: " + ", ".join(f"digit {k} -{percent(d)}" for k, d in bad)
    checks.append({"name": "digit_recall", "passed": not bad, "detail": detail})
    age = _age_days(record.get("model_created"), now)
    checks.append({"name": "model_age", "passed": age is not None and age <= policy.max_age_days,
                   "detail": (f"created {record.get('model_created')}, {age:.1f} days ago" if age is not None
                              else f"creation time unknown ({record.get('model_created')!r})")
                   + f" (allowed {policy.max_age_days:g} days)"})
    return checks


def _models(reg: Registry, limit: int) -> list:
    """(sha256, newest history entry naming it) for production then earlier models, newest first."""
    pointer = reg.show()              # NoProductionModel before the first promotion
    seen, out = set(), []
    for entry in [pointer, *reversed(reg.history())]:
        if entry["sha256"] not in seen:
            seen.add(entry["sha256"])
            out.append(entry)
    return out[:limit]


def _put_report(uri: str, week: str, doc: dict, endpoint_url: str | None) -> str:
    """Write the data gate's report next to the week: s3://BUCKET/PREFIX/week-N.bad-files.json."""
    bucket, prefix = parse_uri(uri)
    key = f"{prefix}/{week}.bad-files.json" if prefix else f"{week}.bad-files.json"
    client = make_client(endpoint_url)
    with s3_errors(client, bucket, key):
        client.put_object(Bucket=bucket, Key=key, Body=json.dumps(doc, indent=1).encode(),
                          ContentType="application/json")
    return f"s3://{bucket}/{key}"


def run(uri: str, registry: str, week: str = "latest", *, out_dir, endpoint_url: str | None = None,
        policy: MonitorPolicy | None = None, data_dir=None, now: _dt.datetime | None = None) -> Outcome:
    """Fetch ``week`` of ``uri``, gate it, score the registry's models on it, append the field history.

    Raises S3Error, RegistryError, EvaluationError or MonitorError (one-line messages) on unusable input.
    """
    policy = policy or MonitorPolicy()
    out_dir = Path(out_dir)
    reg = Registry(registry, endpoint_url)          # the cheap checks first: registry, models, MNIST
    entries = _models(reg, policy.max_models)
    baseline = load_test_set(data_dir)
    [fetched] = fetch(uri, week, out_dir / "weeks", endpoint_url=endpoint_url)
    gate = validate_folder(fetched.folder, max_bad_fraction=policy.max_bad_fraction)
    doc = gate.to_dict()
    write_report(gate, out_dir / f"{fetched.week}.validation.json")
    if not gate.passed:
        where = _put_report(uri, fetched.week, doc, endpoint_url)
        return Outcome("quarantined", fetched.week, validation=doc, report_uri=where, policy=policy.to_dict())
    if gate.good == 0:
        raise MonitorError(f"{fetched.week} of {uri} holds no images to score")
    number = week_number(fetched.week)
    week_set = TestSet(gate.images, gate.labels, data_sha256(gate.images, gate.labels), f"s3:{fetched.week}")
    records = []
    for i, entry in enumerate(entries):
        path = out_dir / "models" / Path(model_key(entry["sha256"])).name
        if not path.is_file():
            atomic_write_bytes(path, reg.model_bytes(entry["sha256"]))
        model = load_model(path, week_set)
        created = model.metadata.get("created") or entry.get("time")
        records.append({"schema": RECORD_SCHEMA, "week": number, "week_name": fetched.week,
                        "model_sha256": entry["sha256"], "registry_version": entry["version"],
                        "production": i == 0, "model_created": created,
                        "data_sha256": week_set.sha256, "scored_at": utc_now(),
                        **score(model, week_set, baseline)})
    history = FieldHistory(reg).append(records)
    checks = judge(records[0], policy, now)
    status = "pass" if all(c["passed"] for c in checks) else "fail"
    return Outcome(status, fetched.week, checks, records, history, doc, policy=policy.to_dict())
