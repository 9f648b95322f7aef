"""The chart's Prometheus Operator objects (value set "monitoring"): the PrometheusRule carries exactly the
rules of chart/files/alerts.yml and passes `promtool check rules`; the ServiceMonitor selects the chart's
Service and scrapes its named port's /metrics. Off by default (test_delivery_chart checks the kinds)."""
from __future__ import annotations

import subprocess

import yaml

from tests.monitoring.conftest import need


def test_prometheus_rule_is_the_rules_file_and_lints(repo_root, one, tmp_path):
    rule = one("monitoring", "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert rule["spec"] == yaml.safe_load((repo_root / "chart" / "files" / "alerts.yml").read_text())
    rendered = tmp_path / "rendered-rules.yml"
    rendered.write_text(yaml.safe_dump(rule["spec"]))
    r = subprocess.run([need("promtool"), "check", "rules", str(rendered)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and "SUCCESS: 7 rules found" in r.stdout, r.stdout + r.stderr


def test_service_monitor_scrapes_the_metrics_service_only(one, objects):
    monitor = one("monitoring", "ServiceMonitor")
    services = objects("monitoring", "Service")
    (service,) = [s for s in services if s["metadata"]["name"].endswith("-metrics")]
    public = [s for s in services if s is not service]
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert public and not any(selector.items() <= s["metadata"]["labels"].items() for s in public)
    assert selector and selector.items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [service["metadata"]["namespace"]]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics" and endpoint["interval"] == "15s"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
