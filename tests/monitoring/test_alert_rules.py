"""The alert rules (chart/files/alerts.yml) with Debian's promtool: they lint, every rule has a unit test
that fires on a bad job and stays quiet on a good one, and those tests catch a rule that is broken
either way (never fires, or fires on everything)."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "chart" / "files" / "alerts.yml"
TESTS = sorted(Path(__file__).parent.glob("alerts*_test.yml"))


def rules() -> list[dict]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]


def promtool_test(promtool, rule_file: Path, work: Path, alert: str) -> subprocess.CompletedProcess:
    """Run the unit-test files that test ``alert`` against ``rule_file`` (copies pointing at it)."""
    files = []
    for t in TESTS:
        if f"alertname: {alert}\n" not in t.read_text():
            continue
        doc = yaml.safe_load(t.read_text())
        doc["rule_files"] = [str(rule_file)]
        copy = work / t.name
        copy.write_text(yaml.safe_dump(doc, sort_keys=False))
        files.append(copy)
    return subprocess.run([promtool, "test", "rules", *map(str, files)], capture_output=True, text=True,
                          timeout=120)


def test_rules_lint(promtool):
    r = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and f"SUCCESS: {len(rules())} rules found" in r.stdout, r.stdout + r.stderr


def test_rule_unit_tests_pass(promtool):
    r = subprocess.run([promtool, "test", "rules", *map(str, TESTS)], capture_output=True, text=True,
                       timeout=120, cwd=Path(__file__).parent)
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_alert_fires_on_bad_and_nothing_else():
    """Each alert has a test whose only expected alert is the "bad" job's, and a "good" job in its input."""
    tested = {}
    for t in TESTS:
        for case in yaml.safe_load(t.read_text())["tests"]:
            jobs = {re.search(r'job="([^"]+)"', s["series"]).group(1) for s in case["input_series"]}
            for check in case["alert_rule_test"]:
                expected = [a["exp_labels"]["job"] for a in check["exp_alerts"]]
                tested[check["alertname"]] = (expected, jobs)
    names = [r["alert"] for r in rules()]
    assert sorted(tested) == sorted(names)
    for name, (expected, jobs) in tested.items():
        assert expected == ["bad"] and "good" in jobs, name
    assert len(names) == 7 and all(r.get("labels", {}).get("severity") for r in rules())


# An alert's threshold comparison: the last "> x", ">= x" or "== x" of its expression.
_THRESHOLD = re.compile(r"(>=?|==) [0-9.* ]+$", re.M)


@pytest.mark.parametrize("how", ["never", "always"])
def test_unit_tests_catch_a_broken_rule(promtool, tmp_path, how):
    """Break one rule at a time (it never fires, or its threshold lets every job through): the unit
    tests must fail and name that rule."""
    for i, rule in enumerate(rules()):
        doc = yaml.safe_load(RULES.read_text())
        broken = doc["groups"][0]["rules"][i]
        if how == "never":
            broken["expr"] = "vector(1) == 0"
        else:
            assert _THRESHOLD.search(broken["expr"].strip()), rule["alert"]
            broken["expr"] = _THRESHOLD.sub(">= 0", broken["expr"].strip())
        path = tmp_path / f"{how}-{i}.yml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        r = promtool_test(promtool, path, tmp_path, rule["alert"])
        assert r.returncode != 0, f"{rule['alert']} broken ({how} fires) passed its unit test"
        assert f"alertname: {rule['alert']}," in r.stdout + r.stderr, rule["alert"]


def test_the_rehearsal_loads_the_same_rules_with_time_compressed(promtool, tmp_path):
    from mnistlite.cli.prometheus import FOR_SECONDS, compressed_rules

    text = RULES.read_text()
    fast = compressed_rules(text)
    assert fast.count(f"for: {FOR_SECONDS}s") == len(rules())
    strip = [ln for ln in text.splitlines() if not ln.strip().startswith("for:")]
    assert [ln for ln in fast.splitlines() if not ln.strip().startswith("for:")] == strip
    path = tmp_path / "fast.yml"
    path.write_text(fast)
    r = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
