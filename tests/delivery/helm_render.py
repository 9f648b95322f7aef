"""Render and check the Helm chart with Helm's own Go SDK; run by the ``chart_result`` fixture
(tests/delivery/conftest.py) as a separate program.

Runs under the delivery-tools venv (tools/install.sh), not the project's, because it imports
helm_python (Helm's Go SDK as a shared library: no helm binary, no cluster, no network) and
kubernetes_validate (the Kubernetes API's JSON schemas, shipped in the package):

    TOOLS_PYTHON tests/delivery/helm_render.py REQUEST.json > RESULT.json

REQUEST: {"chart": DIR, "out": DIR, "release": NAME, "namespace": NS, "kube_version": "1.33.0",
          "sets": {NAME: VALUES_YAML_FILE or null}, "invalid": [VALUES_YAML_FILE, ...]}
RESULT:  {"lint": helm lint report (strict, default values),
          "sets": {NAME: {"lint": report, "manifests": {template: text}, "objects": [object],
                          "files": [written YAML file], "invalid_objects": [message]}},
          "invalid": {FILE: {"schema_error": message or null, "render_error": message or null}},
          "helm_sdk": version, "kube_version": version}
Each rendered object is written to OUT/NAME/KIND-NAME.yaml (for checkov) and validated against
the Kubernetes API schema of kube_version in strict mode (unknown fields are errors).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import helm_python as helm
import kubernetes_validate
import yaml

CRD_GROUPS = ("monitoring.coreos.com/",)


def load_values(path):
    return {} if path is None else (helm.values_from_yaml(Path(path).read_text()) or {})


def main() -> int:
    req = json.loads(Path(sys.argv[1]).read_text())
    chart_dir, out = Path(req["chart"]), Path(req["out"])
    kube_version = req.get("kube_version") or kubernetes_validate.latest_version()
    result = {"helm_sdk": helm.helm_sdk_version(), "kube_version": kube_version,
              "lint": helm.lint(chart_dir, strict=True, namespace=req["namespace"]),
              "sets": {}, "invalid": {}}
    with helm.Chart.load(chart_dir) as chart:
        for name, values_file in req["sets"].items():
            values = load_values(values_file)
            entry = {"lint": helm.lint(chart_dir, values, strict=True, namespace=req["namespace"]),
                     "manifests": chart.render(values, name=req["release"], namespace=req["namespace"],
                                               is_install=True),
                     "objects": [], "files": [], "invalid_objects": []}
            folder = out / name
            folder.mkdir(parents=True, exist_ok=True)
            for template, text in sorted(entry["manifests"].items()):
                if not template.endswith((".yaml", ".yml")):
                    continue  # NOTES.txt
                for obj in yaml.safe_load_all(text):
                    if not obj:
                        continue
                    entry["objects"].append(obj)
                    try:
                        # Prometheus Operator kinds: kubernetes_validate has no schema for CRDs;
                        # tests/delivery/test_delivery_monitoring.py checks them instead
                        if not obj.get("apiVersion", "").startswith(CRD_GROUPS):
                            kubernetes_validate.validate(obj, kube_version, strict=True)
                    except Exception as e:  # ValidationError, SchemaNotFoundError, InvalidSchemaError
                        entry["invalid_objects"].append(f"{template}: {obj.get('kind')}/"
                                                        f"{obj.get('metadata', {}).get('name')}: {e}")
                    path = folder / f"{obj['kind']}-{obj['metadata']['name']}.yaml"
                    path.write_text(yaml.safe_dump(obj, sort_keys=False))
                    entry["files"].append(str(path))
            result["sets"][name] = entry
        for values_file in req.get("invalid", []):
            values = load_values(values_file)
            outcome = {"schema_error": None, "render_error": None}
            try:
                chart.validate_schema(values)
            except helm.HelmError as e:
                outcome["schema_error"] = str(e)
            try:
                chart.render(values, name=req["release"], namespace=req["namespace"], is_install=True)
            except helm.HelmError as e:
                outcome["render_error"] = str(e)
            result["invalid"][values_file] = outcome
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
