"""The rehearsal's machinery (`make pipeline`): its folders, running the project's commands as the workflows
do, the registry and gate steps, and the driver that runs the stages in order and writes report.json."""
from __future__ import annotations

import json
import resource
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from mnistlite.data.mnist import find_mnist
from mnistlite.files import atomic_write_bytes
from mnistlite.serialize import file_sha256

from . import local_service
from .common import SOURCE_ROOT as ROOT

DATA_URI = "s3://mnistlite-data/weeks"
REGISTRY_URI = "s3://mnistlite-registry/production"


class StageFailed(RuntimeError):
    """A stage did not behave as expected; the message is the report's detail."""


def _cpu() -> float:
    """CPU seconds of this process and its finished children."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


class Steps:
    """What every stage uses: the work folders, running the project's commands, the registry, the gate; and
    the driver that runs ``STAGES`` in order (each a ``stage_NAME`` method of a subclass)."""

    stages: tuple = ()

    def __init__(self, args):
        self.dir = Path(args.dir).resolve()
        self.week_size = args.week_size
        self.worse_flags = args.worse_flags
        self.t0 = time.monotonic()
        self.report: list[dict] = []
        self.s3 = None
        self.env: dict = {}
        self.models = self.dir / "models"
        self.weeks = self.dir / "weeks"
        self.sha: dict = {}
        self.service = local_service.LocalService(self.dir / "serve", {}, self.say)

    # ---- output -------------------------------------------------------------------------------
    def say(self, msg: str) -> None:
        print(f"[pipeline {time.monotonic() - self.t0:6.1f}s] {msg}", flush=True)

    def run(self, cmd: list, *, expect=(0,), what: str = "", echo: bool = True) -> tuple[int, str]:
        """Run a command from the repo root, echoing its output as it comes (unless ``echo`` is False);
        StageFailed on another exit code."""
        shown = " ".join(shlex.quote(str(c)).replace(str(ROOT) + "/", "") for c in cmd)
        self.say(f"$ {shown}")
        proc = subprocess.Popen([str(c) for c in cmd], cwd=ROOT, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, bufsize=1)
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if echo:
                print(f"    {line}", end="", flush=True)
        code = proc.wait()
        if code not in expect:
            last = next((ln.strip() for ln in reversed(lines) if ln.strip()), "")
            raise StageFailed(f"{what or Path(str(cmd[1])).name} exited {code}, expected "
                              f"{' or '.join(map(str, expect))}: {last}")
        return code, "".join(lines)

    def py(self, script: str, *args, **kw) -> tuple[int, str]:
        return self.run([sys.executable, f"scripts/{script}", *args], what=script, **kw)

    def candidate(self, name: str, flags: str) -> Path:
        """`make candidate`: the one training command of both workflows, here with a small recipe."""
        if not shutil.which("make"):
            raise StageFailed("`make` is not installed; the candidate is trained by `make candidate`")
        out = self.models / f"{name}.npz"
        self.run(["make", "--no-print-directory", "-s", "candidate", f"PY={sys.executable}",
                  f"DATA_URI={DATA_URI}", f"CANDIDATE={out}", f"WEEKS_DIR={self.weeks}",
                  f"TRAIN_FLAGS={flags}"],
                 what="make candidate")
        self.sha[name] = file_sha256(out)
        return out

    def registry(self, *args, **kw) -> tuple[int, str]:
        return self.py("registry.py", *args, "--registry", REGISTRY_URI, **kw)

    def pointer(self, echo: bool = False) -> dict | None:
        code, out = self.registry("show", expect=(0, 1), echo=echo)
        return json.loads(out[out.index("{"):]) if code == 0 else None

    def history(self) -> list:
        code, out = self.registry("show", "--history", expect=(0, 1), echo=False)
        return json.loads(out[out.index("["):]) if code == 0 else []

    def gate(self, candidate: Path, name: str) -> tuple[int, dict]:
        """The PR gate's steps: fetch production (none on a first deploy), then scripts/evaluate.py."""
        production = self.models / "production.npz"
        production.unlink(missing_ok=True)
        code, out = self.registry("fetch", "--out", production, expect=(0, 1))
        if code == 1 and "no production model yet" not in out:
            raise StageFailed(f"registry fetch failed: {out.strip().splitlines()[-1]}")
        against = ["--production", production] if code == 0 else []
        verdict = self.dir / "gate" / f"{name}.verdict.json"
        code, _ = self.py("evaluate.py", "--candidate", candidate, *against, "--data", self.mnist,
                          "--report", self.dir / "gate" / f"{name}.md", "--verdict", verdict,
                          expect=(0, 1, 2))
        doc = json.loads(verdict.read_text()) if verdict.exists() else {}
        reasons = "; ".join(doc.get("reasons", [])) or "no reasons"
        self.say(f"gate exit {code}: {doc.get('status')} ({reasons})")
        return code, doc

    def promote(self, model: Path, verdict: Path, image: tuple = ()) -> dict:
        """scripts/registry.py promote; ``image``: its --image-digest/--image-repository flags, if any."""
        # The training metrics carry the per-run facts the model file leaves out (seconds, memory, threads).
        metrics = model.with_suffix(".metrics.json")
        training = ["--metrics", metrics] if metrics.exists() else []
        self.registry("promote", model, *training, "--metrics", verdict, *image)
        return self.pointer(echo=True)

    # ---- driver -------------------------------------------------------------------------------
    def stop_extras(self) -> None:
        """Stop what a subclass started besides S3 and the source-tree service (containers, registries)."""

    def write_report(self) -> None:
        atomic_write_bytes(self.dir / "report.json", (json.dumps(self.report, indent=2) + "\n").encode())

    def prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        for sub in ("s3", "weeks", "models", "gate", "serve", "image"):   # a previous run's folders
            shutil.rmtree(self.dir / sub, ignore_errors=True)
            if sub not in ("s3", "image"):
                (self.dir / sub).mkdir()
        for stale in ("report.json", "validation.json"):
            (self.dir / stale).unlink(missing_ok=True)
        self.mnist = str(find_mnist())

    def main(self) -> int:
        self.say(f"the whole pipeline on one machine; work folder {self.dir}")
        failed = None
        try:
            try:
                self.prepare()
            except (OSError, ValueError, RuntimeError) as e:   # no MNIST (DatasetError), an unwritable folder
                failed = "set-up"
                self.say(f"FAILED set-up: {e}")
            for name in self.stages:
                if failed:
                    self.report.append({"stage": name, "ok": False, "detail": f"skipped: {failed} failed",
                                        "seconds": 0.0, "cpu_seconds": 0.0})
                    continue
                self.say(f"=== {name} ===")
                t, cpu = time.monotonic(), _cpu()
                try:
                    detail, ok = getattr(self, f"stage_{name}")(), True
                except StageFailed as e:
                    detail, ok = str(e), False
                except Exception as e:  # an unexpected error is a failed stage too, reported like the others
                    detail, ok = f"{type(e).__name__}: {e}", False
                seconds, cpu = round(time.monotonic() - t, 2), round(_cpu() - cpu, 2)
                self.report.append({"stage": name, "ok": ok, "detail": detail, "seconds": seconds,
                                    "cpu_seconds": cpu})
                self.say(f"{'ok' if ok else 'FAILED'} {name} ({seconds:.1f} s, {cpu:.1f} s CPU): {detail}")
                if not ok:
                    failed = name
                self.write_report()
        finally:
            self.service.stop()
            self.stop_extras()
            if self.s3 is not None:
                self.s3.stop()
            if self.report and self.dir.is_dir():
                self.write_report()
        total = time.monotonic() - self.t0
        print(f"\n{'stage':<9} {'ok':<5} {'seconds':>8} {'cpu s':>7}  detail")
        for r in self.report:
            print(f"{r['stage']:<9} {str(r['ok']).lower():<5} {r['seconds']:>8.1f} {r['cpu_seconds']:>7.1f}  "
                  f"{r['detail']}")
        ok = len(self.report) == len(self.stages) and all(r["ok"] for r in self.report)
        behaved = sum(r["ok"] for r in self.report)
        print(f"\n{'PASS' if ok else 'FAIL'}: {behaved}/{len(self.stages)} stages behaved; "
              f"{total:.1f} s wall; report {self.dir / 'report.json'}", flush=True)
        return 0 if ok else 1
