"""tools/image.sh picks its docker CLI after installing an engine, tested on a fake PATH.

Some machines have a newer `docker` CLI early on PATH (/usr/local/bin) with no buildx plugin and no
daemon. That CLI would build with the legacy builder (no RUN --mount), so the script must choose, once
Debian's docker.io is installed, the CLI that builds with BuildKit. Here every program the script runs
that matters is a small fake: two docker CLIs, dockerd and apt-get; the rest are the real tools, linked
into a directory of their own so that nothing else on this machine's PATH is seen.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "image.sh"
# What tools/image.sh runs on its way to an engine, besides docker, dockerd, apt-get and id.
REAL_TOOLS = ("bash", "dirname", "mkdir", "flock", "setsid", "seq", "sleep", "tail", "grep", "cat")
BASH = shutil.which("bash") or "/bin/bash"


def _script(path: Path, body: str) -> None:
    path.write_text(f"#!{BASH}\n{body}")
    path.chmod(0o755)


def _docker_cli(path: Path, version: str, *, buildx: bool, state: Path) -> None:
    """A docker CLI that reports `version`, has buildx or not, and answers `info` once state/up exists."""
    has = ("echo github.com/docker/buildx v0.23.0" if buildx
           else "echo unknown command: docker buildx >&2; exit 1")
    _script(path, f"""\
echo "$0 $*" >> {state}/calls
case "$1" in
  --version) echo "Docker version {version}, build 0000000" ;;
  buildx) {has} ;;
  info) [ -e {state}/up ] || {{ echo "Cannot connect to the Docker daemon" >&2; exit 1; }}; echo {version} ;;
  *) echo "fake docker: $*" >&2; exit 1 ;;
esac
""")


@pytest.fixture()
def fake_machine(tmp_path):
    """Directories for a fake PATH, a state dir the fakes log to, and the env to run the script with."""
    state, sysbin = tmp_path / "state", tmp_path / "sysbin"
    state.mkdir()
    sysbin.mkdir()
    for name in REAL_TOOLS:
        real = shutil.which(name)
        if real is None:
            pytest.skip(f"{name} is not installed")
        (sysbin / name).symlink_to(real)
    _script(sysbin / "id", 'echo 0\n')  # root, as apt-get needs; the test itself need not be
    env = {"PATH": "", "HOME": str(tmp_path), "MNISTLITE_DOCKER_DIR": str(tmp_path / "cache"), "LANG": "C"}
    yield tmp_path, state, sysbin, env
    pidfile = tmp_path / "cache" / "run" / "dockerd.pid"
    if pidfile.exists():  # the fake dockerd this test's script started, by its own pid
        try:
            os.kill(int(pidfile.read_text()), signal.SIGTERM)
        except (ProcessLookupError, ValueError):
            pass


def _engine(env) -> subprocess.CompletedProcess:
    return subprocess.run([BASH, str(SCRIPT), "engine"], env=env, capture_output=True, text=True, timeout=90)


def _dirs(tmp: Path, *names: str) -> list[Path]:
    """Fresh directories under tmp, for the fake PATH."""
    for name in names:
        (tmp / name).mkdir()
    return [tmp / name for name in names]


def _assert_engine(r: subprocess.CompletedProcess, answer: str, cli: Path) -> None:
    """`tools/image.sh engine` succeeded, printed `answer` and said it chose `cli`."""
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == answer
    assert f"CLI {cli}" in r.stderr, r.stderr


def test_cli_picked_after_docker_io_is_installed(fake_machine):
    """A newer CLI without buildx first on PATH, no dockerd: install docker.io, then use its CLI."""
    tmp, state, sysbin, env = fake_machine
    local, usr = _dirs(tmp, "usr-local-bin", "usr-bin")
    _docker_cli(local / "docker", "28.2.2", buildx=False, state=state)
    # apt-get install docker.io: a CLI with the built-in BuildKit client (20.10) and a dockerd that
    # writes its pidfile, says it is up and lives at most 20 s.
    installed_cli = tmp / "installed-docker"
    _docker_cli(installed_cli, "20.10.24+dfsg1", buildx=False, state=state)
    dockerd = tmp / "installed-dockerd"
    _script(dockerd, f"""\
while [ $# -gt 0 ]; do [ "$1" = --pidfile ] && echo $$ > "$2"; shift; done
trap 'exit 0' TERM
: > {state}/up
for _ in $(seq 1 100); do sleep 0.2; done
""")
    _script(sysbin / "apt-get", f"""\
echo "apt-get $*" >> {state}/apt
cat {installed_cli} > {usr}/docker && cat {dockerd} > {usr}/dockerd
{shutil.which('chmod')} 755 {usr}/docker {usr}/dockerd
""")
    env["PATH"] = f"{local}:{sysbin}:{usr}"

    r = _engine(env)

    _assert_engine(r, "started", usr / "docker")
    assert "docker.io" in (state / "apt").read_text()
    # The engine started was asked for through the installed CLI, not the newer one found first.
    infos = [line for line in (state / "calls").read_text().splitlines() if line.split()[1:2] == ["info"]]
    assert infos[-1].startswith(f"{usr}/docker "), infos


def test_first_cli_that_builds_wins_and_nothing_is_installed(fake_machine):
    """Two CLIs on PATH and an engine that answers: the first with buildx is used, apt-get never runs."""
    tmp, state, sysbin, env = fake_machine
    first, second = _dirs(tmp, "first", "second")
    _docker_cli(first / "docker", "28.2.2", buildx=False, state=state)
    _docker_cli(second / "docker", "28.2.2", buildx=True, state=state)
    _script(sysbin / "apt-get", f'echo "apt-get $*" >> {state}/apt\nexit 1\n')
    (state / "up").touch()
    env.update(PATH=f"{first}:{sysbin}:{second}", DOCKER_HOST="unix:///nonexistent/docker.sock")

    r = _engine(env)

    _assert_engine(r, "running", second / "docker")
    assert not (state / "apt").exists()
