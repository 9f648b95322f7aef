"""The Helm chart, offline: Helm's Go SDK (lint, render three value sets, reject bad values files),
kubernetes-validate (strict) on every rendered object, checkov on the rendered manifests, and
the rendered objects themselves. Tools and fixtures: tests/delivery/conftest.py.
"""
from __future__ import annotations

import base64
import os
import re

import pytest


def lint_problems(report):
    """Warnings and errors (severity >= 2); info ('icon is recommended') is not a problem."""
    return [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]


def test_helm_lint_clean(chart_result):
    assert chart_result["lint"]["total_charts_linted"] == 1
    assert lint_problems(chart_result["lint"]) == []
    for name, entry in chart_result["sets"].items():
        assert lint_problems(entry["lint"]) == [], name


@pytest.mark.parametrize("value_set,expected", [
    ("default", {"Deployment", "Service", "ServiceAccount", "HorizontalPodAutoscaler", "PodDisruptionBudget",
                 "Pod", "ConfigMap"}),
    ("ingress-networkpolicy", {"Deployment", "Service", "ServiceAccount", "HorizontalPodAutoscaler",
                               "PodDisruptionBudget", "Pod", "ConfigMap", "Ingress", "NetworkPolicy"}),
    ("no-autoscaling", {"Deployment", "Service", "ServiceAccount", "PodDisruptionBudget", "Pod",
                        "ConfigMap"}),
    ("monitoring", {"Deployment", "Service", "ServiceAccount", "HorizontalPodAutoscaler",
                    "PodDisruptionBudget", "Pod", "ConfigMap", "ServiceMonitor", "PrometheusRule"}),
])
def test_chart_renders_value_set(chart_result, objects, value_set, expected):
    kinds = {o["kind"] for o in objects(value_set)}
    assert kinds == expected
    assert "NOTES.txt" in " ".join(chart_result["sets"][value_set]["manifests"])


def test_rendered_objects_pass_kubernetes_validate_strict(chart_result, value_set):
    entry = chart_result["sets"][value_set]
    assert entry["objects"], "nothing rendered"
    assert entry["invalid_objects"] == []


def test_bad_values_rejected_by_schema(chart_result, invalid_values_file):
    outcome = chart_result["invalid"][str(invalid_values_file)]
    expect = re.search(r"^# expect: (.+)$", invalid_values_file.read_text(), re.M).group(1).strip()
    assert outcome["schema_error"] and expect in outcome["schema_error"], outcome
    assert outcome["render_error"] and expect in outcome["render_error"], outcome


def test_deployment_is_hardened(one):
    dep = one("default", "Deployment")
    pod = dep["spec"]["template"]["spec"]
    psc = pod["securityContext"]
    assert psc["runAsNonRoot"] is True and psc["runAsUser"] == 10001
    assert psc["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["automountServiceAccountToken"] is False
    (c,) = pod["containers"]
    sc = c["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 10001
    assert sc["capabilities"] == {"drop": ["ALL"]} and sc["seccompProfile"]["type"] == "RuntimeDefault"
    assert sc.get("privileged") is False
    assert c["livenessProbe"]["httpGet"]["path"] == "/liveness"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readiness"
    assert c["startupProbe"]["httpGet"]["path"] in ("/liveness", "/readiness")
    for key in ("requests", "limits"):
        assert set(c["resources"][key]) >= {"cpu", "memory"}
    (mount,) = [m for m in c["volumeMounts"] if m["mountPath"] == "/tmp"]
    (vol,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert "emptyDir" in vol
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["MNISTLITE_MODEL"] == "/app/model/model.npz"
    assert env["PORT"] == str(c["ports"][0]["containerPort"])
    assert "replicas" not in dep["spec"], "the HPA owns the replica count"
    sa = one("default", "ServiceAccount")
    assert sa["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] == sa["metadata"]["name"]


def test_prestop_delay_fits_the_grace_period(chart_result, one):
    """Endpoints drain during preStop; gunicorn's graceful stop gets the rest of the grace period."""
    for value_set in chart_result["sets"]:
        pod = one(value_set, "Deployment")["spec"]["template"]["spec"]
        (c,) = pod["containers"]
        # The kubelet sleeps: the distroless image has no shell or sleep program an exec hook could run.
        delay = c["lifecycle"]["preStop"]["sleep"]["seconds"]
        assert isinstance(delay, int) and delay > 0 and "exec" not in c["lifecycle"]["preStop"]
        graceful = int({e["name"]: e.get("value") for e in c["env"]}["GUNICORN_GRACEFUL_TIMEOUT"])
        assert graceful >= 5 and delay + graceful < pod["terminationGracePeriodSeconds"]
        # The probes still reach the server's own routes, over HTTP: nothing runs inside the container.
        assert not any("exec" in c[p] for p in ("startupProbe", "livenessProbe", "readinessProbe"))
        assert c["livenessProbe"]["httpGet"] == {"path": "/liveness", "port": "http"}
        assert c["readinessProbe"]["httpGet"] == {"path": "/readiness", "port": "http"}


def services(objects, value_set) -> tuple[dict, dict]:
    """(the main Service, the metrics Service) of a value set."""
    found = {o["metadata"]["name"].endswith("-metrics"): o for o in objects(value_set, "Service")}
    assert len(objects(value_set, "Service")) == 2 and set(found) == {False, True}, value_set
    return found[False], found[True]


def test_labels_selectors_and_service(chart_result, objects, one):
    namespace = chart_result["request"]["namespace"]
    for value_set in chart_result["sets"]:
        for obj in objects(value_set):
            labels = obj["metadata"]["labels"]
            for key in ("name", "instance", "version", "managed-by", "part-of", "component"):
                assert f"app.kubernetes.io/{key}" in labels, (value_set, obj["kind"], key)
            assert labels["helm.sh/chart"].startswith("mnistlite-")
            assert obj["metadata"]["namespace"] == namespace
    dep = one("default", "Deployment")
    selector = dep["spec"]["selector"]["matchLabels"]
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= pod_labels.items()
    svc, _ = services(objects, "default")
    assert svc["spec"]["selector"] == selector
    assert svc["spec"]["ports"][0]["targetPort"] == "http"
    # The helm test pod must never match the Deployment's selector (a ReplicaSet would adopt it).
    test_pod = one("default", "Pod")
    assert not selector.items() <= test_pod["metadata"]["labels"].items()


def test_hpa_and_pdb(chart_result, one):
    dep = one("default", "Deployment")
    hpa = one("default", "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["minReplicas"] >= 2 and hpa["spec"]["maxReplicas"] >= hpa["spec"]["minReplicas"]
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": dep["metadata"]["name"]}
    for value_set in chart_result["sets"]:
        pdb = one(value_set, "PodDisruptionBudget")
        assert pdb["apiVersion"] == "policy/v1"
        assert pdb["spec"]["selector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]
    fixed = one("no-autoscaling", "Deployment")
    assert fixed["spec"]["replicas"] == 3
    image = fixed["spec"]["template"]["spec"]["containers"][0]["image"]
    assert re.fullmatch(r"registry\.example\.com/ml/mnistlite:1\.2\.3@sha256:[0-9a-f]{64}", image)
    # With a digest the image-pinning checks pass outright: their skips must disappear.
    assert not any(k.startswith("checkov.io/skip") and v.startswith(("CKV_K8S_43", "CKV_K8S_15"))
                   for k, v in fixed["metadata"].get("annotations", {}).items())


def test_ingress_and_networkpolicy(objects, one):
    vs = "ingress-networkpolicy"
    dep = one(vs, "Deployment")
    selector = dep["spec"]["selector"]["matchLabels"]
    ing = one(vs, "Ingress")
    backend = ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == services(objects, vs)[0]["metadata"]["name"]
    assert ing["spec"]["tls"][0]["secretName"] == "mnistlite-tls"
    policies = {p["spec"]["podSelector"]["matchLabels"].get("app.kubernetes.io/component"): p
                for p in objects(vs, "NetworkPolicy")}
    server = policies["server"]
    assert server["spec"]["podSelector"]["matchLabels"] == selector
    assert server["spec"]["egress"] == [] and set(server["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    peers = server["spec"]["ingress"][0]["from"]
    test_pod = one(vs, "Pod")
    test_labels = test_pod["metadata"]["labels"].items()
    assert any(p.get("podSelector", {}).get("matchLabels", {}).items() <= test_labels
               for p in peers if "podSelector" in p and "namespaceSelector" not in p)
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}} in peers
    assert "test" in policies, "the helm test pod gets its own egress-only policy"
    by_port = {rule["ports"][0]["port"]: rule["from"] for rule in server["spec"]["ingress"]}
    assert set(by_port) == {"http", "metrics"}
    prometheus = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    assert by_port["metrics"] == [prometheus] and prometheus not in by_port["http"]


@pytest.mark.parametrize("value_set", ["default", "ingress-networkpolicy", "no-autoscaling"])
def test_metrics_port_is_behind_its_own_cluster_ip_service_only(objects, one, value_set):
    """/metrics and the full model description: a container port of their own, a ClusterIP Service
    for Prometheus, and neither the main Service nor the Ingress ever routes to that port."""
    main, metrics = services(objects, value_set)
    container = one(value_set, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert set(ports) == {"http", "metrics"} and env["METRICS_PORT"] == str(ports["metrics"])
    assert ports["metrics"] != ports["http"]
    assert [p["targetPort"] for p in main["spec"]["ports"]] == ["http"]
    assert metrics["spec"]["type"] == "ClusterIP"
    assert [(p["name"], p["targetPort"]) for p in metrics["spec"]["ports"]] == [("metrics", "metrics")]
    assert metrics["spec"]["selector"] == main["spec"]["selector"]
    for ing in objects(value_set, "Ingress"):
        for rule in ing["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                assert path["backend"]["service"]["name"] == main["metadata"]["name"]


def test_helm_test_pod_posts_the_committed_digit(repo_root, objects, one, digit):
    assert (repo_root / "chart" / "files" / "digit.png").read_bytes() == digit.png.read_bytes()
    pod = one("default", "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    cm = one("default", "ConfigMap")
    assert cm["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert int(cm["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
        pod["metadata"]["annotations"]["helm.sh/hook-weight"])
    assert base64.b64decode(cm["binaryData"]["digit.png"]) == digit.png.read_bytes()
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Never" and spec["automountServiceAccountToken"] is False
    (c,) = spec["containers"]
    assert re.fullmatch(r"curlimages/curl:[\d.]+@sha256:[0-9a-f]{64}", c["image"])
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["EXPECTED"] == str(digit.label)
    svc, _ = services(objects, "default")
    assert env["URL"] == f"http://{svc['metadata']['name']}:{svc['spec']['ports'][0]['port']}/predict"


@pytest.mark.parametrize("answer,passes", [
    ('{"predicted_class": 7, "confidence": 0.99, "probabilities": [0.0], "model_version": "x"}', True),
    ('{"model_version": "x", "predicted_class":7}', True),
    ('{"predicted_class": 1, "confidence": 0.9, "probabilities": [], "model_version": "x"}', False),
    ('{"predicted_class": 77, "confidence": 0.9}', False),
    ('{"error": "model not loaded"}', False),
])
def test_helm_test_script_fails_unless_class_is_right(one, run, tmp_path, answer, passes):
    """Run the test pod's own shell script here, with a stand-in curl that prints ``answer``."""
    pod = one("default", "Pod")
    (c,) = pod["spec"]["containers"]
    assert c["command"][:2] == ["/bin/sh", "-ec"]
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "curl").write_text(f"#!/bin/sh\ncat <<'EOF'\n{answer}\nEOF\n")
    (fake / "curl").chmod(0o755)
    env = {e["name"]: e["value"] for e in c["env"]}
    env["PATH"] = f"{fake}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    result = run(["/bin/sh", "-ec", c["command"][2]], env=env, timeout=30)
    assert (result.returncode == 0) == passes, result.stdout + result.stderr


def test_checkov_rendered_manifests(checkov_reports, assert_checkov_clean, value_set):
    assert_checkov_clean(checkov_reports[f"chart-{value_set}"], 100)
