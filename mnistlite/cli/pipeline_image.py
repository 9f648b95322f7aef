"""The rehearsal ships the image, where a container engine starts: the service image built around each
promoted model, pushed to a local registry on 127.0.0.1, its manifest signed and verified (skopeo with a
throwaway GPG key), and run by digest as the chart runs it (read-only root, uid 10001, no capabilities).

Without an engine (or without the registry tools) the rehearsal serves from the source tree instead and
says why; :meth:`ImageShip.start` returns that reason.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from .common import SOURCE_ROOT as ROOT
from .local_service import LocalService, ServiceError
from .proc import free_port, stop_group

REPOSITORY = "mnistlite"
# What the Dockerfile copies (the .dockerignore allow-list), copied into each build's own context.
CONTEXT_FILES = ("pyproject.toml", "setup.cfg", "README.md", ".dockerignore", "Dockerfile",
                 "requirements/runtime.txt", "mnistlite", "service", "tools/image/rootfs.py")
SIGNER = "mnistlite rehearsal <rehearsal@mnistlite.invalid>"


class ImageShip:
    """Build, push, sign, verify and run the service image; ``steps`` is the rehearsal (run, env, say)."""

    def __init__(self, steps, work: Path):
        self.steps, self.work = steps, work
        self.docker = "docker"
        self.registry: subprocess.Popen | None = None
        self.host = ""             # 127.0.0.1:PORT of the local registry
        self.fingerprint = ""
        self.pushed: list[dict] = []   # every (label, model sha256, digest) built and pushed
        self.served: list[dict] = []   # every container run: digest, /v1/model's sha256
        self.container: str | None = None
        self.started_engine = False   # a dockerd this run started is stopped at the end

    @property
    def repository(self) -> str:
        return f"{self.host}/{REPOSITORY}"

    # ---- set-up ---------------------------------------------------------------------------------
    def start(self) -> str | None:
        """Find or start the engine, the registry tools, the registry and a signing key; None when all
        run, else the reason the rehearsal serves from the source tree."""
        self.work.mkdir(parents=True, exist_ok=True)
        env = self.steps.env
        engine = subprocess.run(["bash", "tools/image.sh", "engine"], cwd=ROOT, env=env, text=True,
                                capture_output=True, stdin=subprocess.DEVNULL)
        said = [ln for ln in engine.stderr.splitlines() if ln.strip()]
        if engine.returncode == 3:
            return said[-1].removeprefix("[image] ") if said else "no container engine can start here"
        if engine.returncode != 0:
            raise RuntimeError(f"tools/image.sh engine exited {engine.returncode}: {said[-1:] or ''}")
        line = next(ln for ln in reversed(said) if "engine: " in ln)
        host, _, cli = line.split("engine: ", 1)[1].partition(", CLI ")
        if host.startswith("unix://"):
            env["DOCKER_HOST"] = host
        self.docker = env["DOCKER"] = cli.strip()
        self.started_engine = engine.stdout.strip() == "started"
        self.steps.say(f"container engine: {host}, CLI {self.docker} ({engine.stdout.strip()})")
        tools = subprocess.run(["bash", "tools/install-registry.sh"], cwd=ROOT, env=env, text=True,
                               capture_output=True, stdin=subprocess.DEVNULL)
        if tools.returncode != 0:   # under CI=true, where an engine exists
            raise RuntimeError(f"tools/install-registry.sh: {tools.stderr.strip()}")
        if not all(map(shutil.which, ("docker-registry", "skopeo", "gpg"))):
            return tools.stderr.strip().splitlines()[-1] if tools.stderr.strip() else "no registry tools"
        self.start_registry()
        self.make_key()
        return None

    def start_registry(self) -> None:
        root = self.work / "registry"
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        self.host = f"127.0.0.1:{free_port()}"
        config = self.work / "registry.yml"
        config.write_text(f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
                          f"    rootdirectory: {root}\n  delete:\n    enabled: true\n"
                          f"http:\n  addr: {self.host}\n")
        log = open(self.work / "registry.log", "wb")
        self.registry = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.registry.poll() is not None:
                raise RuntimeError(f"docker-registry exited {self.registry.returncode} "
                                   f"(log {self.work / 'registry.log'})")
            try:
                with urllib.request.urlopen(f"http://{self.host}/v2/", timeout=2):
                    self.steps.say(f"image registry (docker-registry) on {self.host}, storage {root}")
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        raise RuntimeError(f"docker-registry on {self.host} did not answer /v2/ within 30 s")

    def make_key(self) -> None:
        """A throwaway ed25519 signing key in the work folder's own GNUPGHOME (no passphrase)."""
        home = self.work / "gnupg"
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(mode=0o700)
        self.steps.env["GNUPGHOME"] = str(home)
        self.steps.run(["gpg", "--batch", "--quiet", "--passphrase", "", "--quick-gen-key", SIGNER, "ed25519",
                        "sign", "never"], what="gpg --quick-gen-key", echo=False)
        _, out = self.steps.run(["gpg", "--batch", "--with-colons", "--list-secret-keys"], what="gpg",
                                echo=False)
        self.fingerprint = next(ln.split(":")[9] for ln in out.splitlines() if ln.startswith("fpr:"))

    def tags(self) -> list[str]:
        """The tags the registry holds for the repository (none before the first push)."""
        try:
            with urllib.request.urlopen(f"http://{self.host}/v2/{REPOSITORY}/tags/list", timeout=5) as r:
                return sorted(json.loads(r.read()).get("tags") or [])
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return []
            raise

    # ---- build, push, sign ----------------------------------------------------------------------
    def ship(self, model: Path, label: str, sha: str) -> str:
        """Build the image around ``model``, push it as REPOSITORY:label, sign its manifest; the digest."""
        context = self.work / "context" / label
        shutil.rmtree(context, ignore_errors=True)
        for name in CONTEXT_FILES:
            src, dst = ROOT / name, context / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.py[cod]"))
            else:
                shutil.copy2(src, dst)
        (context / "model").mkdir()
        shutil.copy2(model, context / "model" / "model.npz")
        tag = f"{self.repository}:{label}"
        env = dict(self.steps.env, IMAGE=tag, BUILD_CONTEXT=str(context))
        saved, self.steps.env = self.steps.env, env
        try:
            self.steps.run(["bash", "tools/image.sh", "build"], what="tools/image.sh build", echo=False)
        finally:
            self.steps.env = saved
        shutil.rmtree(context, ignore_errors=True)
        self.steps.run([self.docker, "push", tag], what="docker push", echo=False)
        _, out = self.steps.run([self.docker, "image", "inspect", tag, "--format",
                                 "{{range .RepoDigests}}{{println .}}{{end}}"],
                                what="docker inspect", echo=False)
        digest = next((ln.split("@", 1)[1] for ln in out.split() if ln.startswith(self.repository + "@")), "")
        if not digest.startswith("sha256:"):
            raise RuntimeError(f"docker push left no registry digest for {tag}: {out.strip()!r}")
        self.sign(digest)
        self.pushed.append({"label": label, "model_sha256": sha, "image_digest": digest})
        self.steps.say(f"pushed and signed {self.repository}@{digest} (model {sha[:12]})")
        return digest

    def manifest(self, digest: str) -> Path:
        """The manifest the registry serves for ``digest``, checked against the digest, saved to a file."""
        _, raw = self.steps.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                                 f"docker://{self.repository}@{digest}"], what="skopeo inspect", echo=False)
        body = raw.encode()
        if "sha256:" + hashlib.sha256(body).hexdigest() != digest:
            raise RuntimeError(f"the registry's manifest for {digest} does not hash to it")
        path = self.work / f"manifest-{digest[7:19]}.json"
        path.write_bytes(body)
        return path

    def sign(self, digest: str) -> None:
        self.steps.run(["skopeo", "standalone-sign", self.manifest(digest), self.repository, self.fingerprint,
                        "--output", self.work / f"signature-{digest[7:19]}"], what="skopeo standalone-sign",
                       echo=False)

    def verify(self, digest: str) -> None:
        """skopeo checks the signature over the manifest the registry serves now, for this repository."""
        self.steps.run(["skopeo", "standalone-verify", self.manifest(digest), self.repository,
                        self.fingerprint, self.work / f"signature-{digest[7:19]}"],
                       what="skopeo standalone-verify", echo=False)

    # ---- run by digest --------------------------------------------------------------------------
    def serve(self, digest: str, expected_sha: str) -> str:
        """Verify, pull and run ``digest`` as the chart does, check it; the previous container (if any)
        is removed only after the new one answered: a switch, as a rolling update does it."""
        ref = f"{self.repository}@{digest}"
        self.verify(digest)
        self.steps.run([self.docker, "pull", "--quiet", ref], what="docker pull", echo=False)
        service = ContainerService(self, ref)
        try:
            service.start()
            summary = service.check(expected_sha)
        except ServiceError:
            service.remove()
            raise
        old, self.container = self.container, service.cid
        if old:
            self.remove(old)
        self.served.append({"image_digest": digest, "served_sha256": service.served_sha,
                            "expected_sha256": expected_sha})
        return f"{summary}; signature verified; ran {ref} read-only as uid 10001"

    def remove(self, cid: str) -> None:
        subprocess.run([self.docker, "rm", "-f", cid], env=self.steps.env, capture_output=True, timeout=60)

    def stop(self) -> None:
        if self.container:
            self.remove(self.container)
            self.container = None
        stop_group(self.registry, grace=10)
        self.registry = None
        if "GNUPGHOME" in self.steps.env:   # gpg starts an agent per home; it would outlive the run
            subprocess.run(["gpgconf", "--kill", "all"], env=self.steps.env, capture_output=True, timeout=30)
        for p in self.pushed:   # the engine keeps the layers (the build cache), not this run's tags
            subprocess.run([self.docker, "rmi", f"{self.repository}:{p['label']}"], env=self.steps.env,
                           capture_output=True, timeout=60)
        if self.started_engine:
            subprocess.run(["bash", "tools/image.sh", "stop"], cwd=ROOT, env=self.steps.env,
                           capture_output=True, timeout=90)
        if self.pushed or self.served:
            (self.work / "image.json").write_text(json.dumps({"repository": self.repository,
                                                              "pushed": self.pushed, "served": self.served},
                                                             indent=2) + "\n")


class ContainerService(LocalService):
    """The image run as the chart runs it, checked like the source-tree service (same /predict, /v1/model)."""

    def __init__(self, ship: ImageShip, ref: str):
        super().__init__(ship.work, ship.steps.env, ship.steps.say)
        self.ship, self.ref, self.cid, self.served_sha = ship, ref, "", ""

    def start(self, timeout: float = 90.0) -> None:
        bind = f"127.0.0.1:{free_port()}"
        self.url = f"http://{bind}"
        cmd = [self.ship.docker, "run", "-d", "--network=host", "--read-only", "--tmpfs", "/tmp",
               "--user", "10001:10001", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
               "-e", f"MNISTLITE_BIND={bind}", "-e", "WEB_CONCURRENCY=2", self.ref]
        _, out = self.ship.steps.run(cmd, what="docker run", echo=False)
        self.cid = out.strip().splitlines()[-1]
        t0, deadline = time.monotonic(), time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = subprocess.run([self.ship.docker, "inspect", self.cid, "--format", "{{.State.Running}}"],
                                   env=self.env, capture_output=True, text=True, timeout=30).stdout.strip()
            if state != "true":
                logs = subprocess.run([self.ship.docker, "logs", "--tail", "5", self.cid], env=self.env,
                                      capture_output=True, text=True, timeout=30)
                raise ServiceError(f"container {self.cid[:12]} exited: {(logs.stdout + logs.stderr).strip()}")
            try:
                with urllib.request.urlopen(self.url + "/readiness", timeout=2) as r:
                    if r.status == 200:
                        self.say(f"container {self.cid[:12]} ({self.ref}) ready on {self.url} after "
                                 f"{time.monotonic() - t0:.1f} s")
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.3)
        raise ServiceError(f"the container on {self.url} was not ready within {timeout:.0f} s")

    def get_json(self, path: str) -> dict:
        doc = super().get_json(path)
        if path == "/v1/model":
            self.served_sha = doc.get("sha256", "")
        return doc

    def remove(self) -> None:
        if self.cid:
            self.ship.remove(self.cid)


def env_disabled() -> str | None:
    """$PIPELINE_IMAGE=0 asks for the source-tree service even where an engine could start."""
    return "PIPELINE_IMAGE=0 asked for the source-tree service" if os.environ.get("PIPELINE_IMAGE") == "0" \
        else None
