"""`make pipeline`, the whole pipeline on one machine, run for real: SeaweedFS, the scripts, gunicorn.

One run must pass every stage; a run whose "worse" candidate is not worse must fail at `refuse`,
stop there and say so in its report.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "pipeline.py"
STAGES = ["publish", "validate", "train", "gate", "promote", "serve", "refuse", "rollback", "monitor"]

pytestmark = pytest.mark.slow


def rehearse(*args, env=None, timeout=600):
    full = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    full.update(env or {})
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], cwd=ROOT, env=full,
                          capture_output=True, text=True, timeout=timeout)


def test_make_pipeline_runs_the_rehearsal_in_pipeline_dir():
    r = subprocess.run(["make", "-n", "pipeline", "PIPELINE_DIR=/tmp/somewhere"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and 'scripts/pipeline.py --dir "/tmp/somewhere"' in r.stdout, r.stdout + r.stderr
    r = subprocess.run(["make", "-n", "candidate", "DATA_URI=s3://b/w", "CANDIDATE=o/c.npz"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    text = r.stdout.replace("\\\n", " ")
    assert "scripts/train.py --data mnist --data \"s3://b/w\" --weeks all" in text
    assert '--out "o/c.npz" --metrics "o/c.metrics.json"' in text
    r = subprocess.run(["make", "candidate"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "set DATA_URI=s3://BUCKET/PREFIX" in r.stderr


def test_every_stage_behaves_and_the_report_says_so(mnist_dir, tmp_path):
    out = tmp_path / "rehearsal"
    r = rehearse(env={"PIPELINE_DIR": str(out), "MNISTLITE_DATA_DIR": str(mnist_dir)})
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    assert [s["stage"] for s in report] == STAGES
    for s in report:
        assert s["ok"] is True and isinstance(s["detail"], str) and s["detail"], s
        assert isinstance(s["seconds"], float) and s["seconds"] > 0, s
    by = {s["stage"]: s for s in report}
    assert "500 quarantined" in by["validate"]["detail"]
    assert "week-3 skipped" in by["train"]["detail"]
    assert "refused (gate exit 1" in by["refuse"]["detail"]
    assert "unchanged at version 1" in by["refuse"]["detail"]
    first_sha = by["promote"]["detail"].split("version 1 = ")[1][:12]
    assert f"/v1/model sha256 {first_sha}" in by["rollback"]["detail"].split("rolled back")[1]
    assert by["rollback"]["detail"].endswith("sha256 = registry (first model)")
    check_what_served(out, by)
    assert len(list((out / "weeks" / "week-3" / "quarantine").glob("*.png"))) == 500
    monitor = by["monitor"]["detail"]
    assert "ordinary digits: no alert" in monitor and "2 workers merged" in monitor
    assert "transposed digits: MnistliteDrift{signal=" in monitor
    assert "firing on /api/v1/alerts after" in monitor
    assert float(monitor.split("firing on /api/v1/alerts after ")[1].split(" s")[0]) <= 60
    assert "PASS: 9/9 stages behaved" in r.stdout
    # every step was printed as it happened, with the commands a person would type
    ran_image = (out / "image" / "image.json").exists()
    served = "docker run" if ran_image else "gunicorn -c service/gunicorn.conf.py"
    for step in ("publish_week.py", "fetch_data.py", "validate_data.py",
                 "make --no-print-directory -s candidate", "evaluate.py", "registry.py promote",
                 served, "registry.py rollback"):
        assert step in r.stdout, step


def check_what_served(out: Path, by: dict) -> None:
    """Where an engine started: the registry holds (model sha256, image digest) pairs, serve and rollback
    ran those images by digest (named in their details), and each image's /v1/model answered the sha256
    the registry pairs with its digest. Otherwise the source-tree service ran, and the details say why."""
    image = out / "image" / "image.json"
    if not image.exists():
        assert "source tree (gunicorn; no image: " in by["serve"]["detail"]
        return
    doc = json.loads(image.read_text())
    history = json.loads((out / "image" / "history.json").read_text())
    pairs = {e["image_digest"]: e["sha256"] for e in history}
    assert len(history) == 3 and None not in pairs and len(set(pairs.values())) == 2, history
    v1, v2 = history[0]["image_digest"], history[1]["image_digest"]
    assert [p["image_digest"] for p in doc["pushed"]] == [v1, v2]
    assert all(e["image_repository"] == doc["repository"] for e in history)
    served = [s["image_digest"] for s in doc["served"]]
    assert v1 != v2 and served == [v1, v2, v1], doc
    for s in doc["served"]:   # registry -> image: /v1/model of the container run by that digest
        assert s["served_sha256"] == pairs[s["image_digest"]], s
    digest = re.compile(r"sha256:[0-9a-f]{64}")
    assert digest.findall(by["serve"]["detail"])[:1] == [v1]
    assert digest.findall(by["rollback"]["detail"].split("rolled back")[0])[:1] == [v2]
    assert digest.findall(by["rollback"]["detail"].split("rolled back")[1])[:1] == [v1]
    assert "switched the running container" in by["rollback"]["detail"]
    assert "no image built or pushed" in by["refuse"]["detail"]


def test_a_worse_candidate_that_is_not_worse_makes_the_run_fail(mnist_dir, tmp_path):
    # production's own recipe, so the "worse" candidate is as good as production: two seeds of it differ
    # by up to 2 points in one digit's recall, which the gate would rightly refuse
    good = ("--hidden 128 --batch-size 32 --epochs 5 --lr 0.001 --schedule constant --seed 0 "
            "--optimizer adam --label-smoothing 0 --shift 0 --augment 0 --dropout 0 --weight-decay 0 "
            "--val-split 0 --threads 1")
    r = rehearse("--dir", tmp_path, "--week-size", 100,
                 env={"PIPELINE_WORSE_FLAGS": good, "MNISTLITE_DATA_DIR": str(mnist_dir)})
    assert r.returncode == 1, r.stdout[-4000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert [s["stage"] for s in report] == STAGES
    assert all(s["ok"] for s in report[:6])
    refuse, rollback, monitor = report[6], report[7], report[8]
    assert refuse["ok"] is False and "was not refused: gate exit 0" in refuse["detail"]
    assert rollback == {"stage": "rollback", "ok": False, "detail": "skipped: refuse failed", "seconds": 0.0,
                        "cpu_seconds": 0.0}
    assert monitor["ok"] is False and monitor["detail"] == "skipped: refuse failed"
    assert "FAIL: 6/9 stages behaved" in r.stdout


def test_local_service_serves_a_model_and_checks_what_it_answers(small_model_path):
    script = ROOT / "scripts" / "local_service.py"
    ok = subprocess.run([sys.executable, str(script), str(small_model_path)], cwd=ROOT, capture_output=True,
                        text=True, timeout=180)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "predicted_class 7" in ok.stdout and "MNISTLITE_BIND=127.0.0.1:" in ok.stdout
    wrong = subprocess.run([sys.executable, str(script), str(small_model_path), "--expect-sha256", "0" * 64],
                           cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert wrong.returncode == 1 and wrong.stderr.startswith("error: /v1/model serves ")
    assert wrong.stderr.strip().endswith("expected " + "0" * 64)
