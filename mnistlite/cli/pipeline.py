#!/usr/bin/env python
"""The whole pipeline on one machine (`make pipeline`): every stage, in order, against a real S3 server.

  pipeline.py [--dir .pipeline] [--week-size 500] [--worse-flags "..."]

SeaweedFS (scripts/s3server.py) serves S3 on 127.0.0.1. The rehearsal runs the project's own commands,
as the workflows do, and checks that each stage behaves, refusals included:

  publish   weeks 1-3 to s3://mnistlite-data/weeks (week 3 is noise, like the damaged bonus images)
  validate  fetch the latest week; the data gate fails it (exit 1) and quarantines every image
  train     `make candidate`: MNIST plus every week that passes the data gate (week 3 skipped)
  gate      no production model yet (first deploy): scripts/evaluate.py applies the floor and passes
  promote   where a container engine starts (pipeline_image.py): build the image around the model, push
            it to a local registry on 127.0.0.1, sign its manifest; then scripts/registry.py promote,
            with the verdict's metrics, the git commit and the image's digest
  serve     run production's image BY DIGEST from that registry, as the chart runs it (read-only root,
            uid 10001), after verifying its signature; POST a 7, check /v1/model's sha256 against the
            registry. Without an engine: fetch the model, run it with the repo's gunicorn config
  refuse    a deliberately worse candidate: the gate exits 1, nothing is built or pushed, the registry
            does not move
  rollback  promote a second, better model (and its image); roll back; the running container is switched
            to the previous digest (or the source-tree service restarted) and answers with the first
  monitor   a real Prometheus with the chart's alert rules watches production: quiet on ordinary
            digits, the drift alert firing on a drifted stream; then scripts/monitor.py (pipeline_monitor.py)

Writes DIR/report.json: [{stage, ok, detail, seconds, cpu_seconds}], after every stage. Exit 0 only if
every stage behaved; a failed stage stops the run (later stages are reported as skipped).
--worse-flags (or $PIPELINE_WORSE_FLAGS) replaces the worse candidate's recipe: give it a good recipe and
the `refuse` stage must fail, which is how the tests check that a broken stage makes the run fail.
$PIPELINE_IMAGE=0 serves from the source tree even where a container engine could start.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from mnistlite.serialize import file_sha256

from . import local_service, pipeline_image, pipeline_monitor
from .common import show_library_log
from .rehearsal import DATA_URI, REGISTRY_URI, StageFailed, Steps
from .s3server import SeaweedS3

STAGES = ("publish", "validate", "train", "gate", "promote", "serve", "refuse", "rollback", "monitor")
# Small recipes, so the rehearsal stays short. The first clears the gate's 97% floor (784-128-10, the
# old Keras recipe); the second is clearly better than the first (784-512-10, 10 epochs, no digit's
# recall lower), so it passes the gate against the first; the worse one is a 1-epoch softmax
# regression, under the floor (docs/pipeline.md has their accuracies). All flags are explicit, so
# a change of the library's recipes does not change the rehearsal; one BLAS thread, because the default
# (one per idle core) would make the weights depend on what else the machine is doing.
_FIXED = ("--optimizer adam --label-smoothing 0 --shift 0 --augment 0 --dropout 0 --weight-decay 0 "
          "--val-split 0 --threads 1")
GOOD_FLAGS = f"--hidden 128 --batch-size 32 --epochs 5 --lr 0.001 --schedule constant --seed 0 {_FIXED}"
SECOND_FLAGS = f"--hidden 512 --batch-size 64 --epochs 10 --lr 0.002 --schedule cosine --seed 1 {_FIXED}"
WORSE_FLAGS = f"--hidden 0 --batch-size 256 --epochs 1 --lr 0.001 --schedule constant --seed 0 {_FIXED}"


class Rehearsal(Steps):
    stages = STAGES
    ship: pipeline_image.ImageShip | None = None
    no_image: str | None = None   # why the source-tree service runs instead of the image

    # ---- the image (pipeline_image.py), where an engine starts -----------------------------------
    def shipping(self) -> pipeline_image.ImageShip | None:
        if self.ship is None and self.no_image is None:
            self.no_image = pipeline_image.env_disabled()
            if self.no_image is None:
                ship = pipeline_image.ImageShip(self, self.dir / "image")
                try:
                    self.no_image = ship.start()
                except RuntimeError as e:
                    ship.stop()
                    raise StageFailed(f"the image could not ship: {e}") from None
                if self.no_image is None:
                    self.ship = ship
                else:
                    self.say(f"serving from the source tree (gunicorn), not the image: {self.no_image}")
        return self.ship

    def image_flags(self, model, label: str) -> tuple:
        """Build and push the image around ``model``: registry.py promote's image flags (none without)."""
        ship = self.shipping()
        if ship is None:
            return ()
        digest = ship.ship(model, label, file_sha256(model))
        return ("--image-digest", digest, "--image-repository", ship.repository)

    def stop_extras(self) -> None:
        if self.ship is None:
            return
        try:   # the (model sha256, image digest) pairs the registry holds, beside what the images served
            history = json.dumps(self.history(), indent=2) + "\n"
            (self.ship.work / "history.json").write_text(history)
        except (StageFailed, OSError, ValueError) as e:
            self.say(f"could not save the registry's history: {e}")
        self.ship.stop()

    # ---- stages -------------------------------------------------------------------------------
    def stage_publish(self) -> str:
        self.s3 = SeaweedS3(self.dir / "s3")
        self.s3.start()
        self.say(f"SeaweedFS S3 on {self.s3.endpoint} (every port on 127.0.0.1; log {self.s3.log_path})")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        self.env.update(self.s3.env, PYTHONUNBUFFERED="1", MNISTLITE_DATA_DIR=self.mnist)
        self.env.pop("MNISTLITE_REGISTRY", None)
        self.service.env = self.env
        client = self.s3.client()
        for bucket in (DATA_URI, REGISTRY_URI):
            client.create_bucket(Bucket=bucket[5:].split("/")[0])
        n = self.week_size
        for k in (1, 2, 3):
            noise = ["--corrupt"] if k == 3 else []
            self.py("publish_week.py", "--data", self.mnist, "--start", (k - 1) * n, "--count", n,
                    f"{DATA_URI}/week-{k}", *noise)
        listed = client.list_objects_v2(Bucket=DATA_URI[5:].split("/")[0], Prefix="weeks/", Delimiter="/")
        weeks = sorted(p["Prefix"] for p in listed.get("CommonPrefixes", []))
        if weeks != ["weeks/week-1/", "weeks/week-2/", "weeks/week-3/"]:
            raise StageFailed(f"expected week-1..3 under {DATA_URI}, found {weeks}")
        return (f"SeaweedFS {self.s3.endpoint}; {DATA_URI}/week-1, week-2: {n} digits each; "
                f"week-3: {n} noise images")

    def stage_validate(self) -> str:
        self.py("fetch_data.py", DATA_URI, "--week", "latest", "--out", self.weeks)
        week = self.weeks / "week-3"
        if not week.is_dir():
            raise StageFailed(f"the latest week was not fetched to {week}")
        report = self.dir / "validation.json"
        code, _ = self.py("validate_data.py", week, "--report", report, "--max-bad-fraction", "0.01",
                          expect=(1,))
        doc = json.loads(report.read_text())
        quarantined = len(list((week / "quarantine").glob("*.png")))
        if doc.get("passed") is not False or quarantined != self.week_size:
            raise StageFailed(f"week-3 should fail with all {self.week_size} images quarantined; "
                              f"passed={doc.get('passed')}, quarantined {quarantined}")
        return (f"latest week-3 refused by the data gate (exit {code}): "
                f"{len(doc['bad'])}/{doc['count']} bad, "
                f"{quarantined} quarantined in {week.relative_to(self.dir)}/quarantine")

    def stage_train(self) -> str:
        model = self.candidate("candidate", GOOD_FLAGS)
        metrics = json.loads(model.with_suffix(".metrics.json").read_text())
        rep = json.loads((self.weeks / "reports" / "week-3.json").read_text())
        if rep.get("passed") is not False:
            raise StageFailed("week-3 passed the data gate during training")
        # the training data: MNIST train + the two good weeks, never week 3
        expected = 60000 + 2 * self.week_size
        got = metrics["n_train"] + (metrics.get("n_val") or 0)
        if got != expected:
            raise StageFailed(f"trained on {got} images, expected MNIST's 60000 + weeks 1-2 ({expected})")
        return (f"make candidate: MNIST + week-1, week-2 (week-3 skipped by the data gate); "
                f"test accuracy {metrics['test_accuracy']:.4f}; sha256 {self.sha['candidate'][:12]}")

    def stage_gate(self) -> str:
        code, doc = self.gate(self.models / "candidate.npz", "candidate")
        if code != 0 or not doc.get("first_deploy"):
            raise StageFailed(f"first-deploy gate exited {code} (first_deploy={doc.get('first_deploy')}), "
                              f"expected a pass")
        acc = doc.get("candidate", {}).get("accuracy")
        return f"no production model yet: first-deploy gate passed (accuracy floor only): accuracy {acc}"

    def stage_promote(self) -> str:
        model = self.models / "candidate.npz"
        p = self.promote(model, self.dir / "gate" / "candidate.verdict.json", self.image_flags(model, "v1"))
        if not p or p["version"] != 1 or p["sha256"] != self.sha["candidate"]:
            raise StageFailed(f"registry should hold version 1 = {self.sha['candidate'][:12]}, shows {p}")
        image = f"; image {p['image_digest']}" if p.get("image_digest") else f"; no image ({self.no_image})"
        return f"{REGISTRY_URI}: version 1 = {p['sha256'][:12]} (git {str(p.get('git_commit'))[:12]}){image}"

    def serve_production(self, label: str) -> str:
        p = self.pointer()
        if self.ship is not None:   # the image the registry names, by digest; it keeps running
            if not p.get("image_digest"):
                raise StageFailed(f"the registry's version {p['version']} records no image digest")
            try:
                return (f"version {p['version']}: image {p['image_digest']}: "
                        + self.ship.serve(p["image_digest"], p["sha256"]) + "; sha256 = registry")
            except (local_service.ServiceError, RuntimeError) as e:
                raise StageFailed(str(e)) from None
        model = self.dir / "serve" / f"production-{label}.npz"
        self.registry("fetch", "--out", model)
        try:
            self.service.start(model)
            return (f"version {p['version']}: source tree (gunicorn; no image: {self.no_image}): "
                    + self.service.check(p["sha256"]) + "; sha256 = registry")
        except local_service.ServiceError as e:
            raise StageFailed(str(e)) from None
        finally:
            self.service.stop()

    def stage_serve(self) -> str:
        return self.serve_production("v1")

    def stage_refuse(self) -> str:
        before = self.history()
        pushed = len(self.ship.pushed) if self.ship else 0
        tags = self.ship.tags() if self.ship else []
        model = self.candidate("worse", self.worse_flags)
        code, doc = self.gate(model, "worse")
        if code == 0:   # what cicd.yml does after a pass: build, push, promote
            self.promote(model, self.dir / "gate" / "worse.verdict.json", self.image_flags(model, "worse"))
        after = self.history()
        if code != 1:
            raise StageFailed(f"the worse candidate ({self.sha['worse'][:12]}) was not refused: "
                              f"gate exit {code}{'; it was promoted' if after != before else ''}")
        if after != before:
            raise StageFailed(f"the registry moved although the gate refused: "
                              f"{len(before)} -> {len(after)} versions")
        image = ""
        if self.ship:
            if len(self.ship.pushed) != pushed or self.ship.tags() != tags:
                raise StageFailed(f"an image was built or pushed for a refused candidate: tags {tags} -> "
                                  f"{self.ship.tags()}")
            image = f"; no image built or pushed (image registry tags: {', '.join(tags)})"
        reasons = "; ".join(doc.get("reasons", [])[:2])
        return (f"worse candidate {self.sha['worse'][:12]} refused (gate exit 1: {reasons}); "
                f"registry unchanged at version {after[-1]['version']}{image}")

    def stage_rollback(self) -> str:
        model = self.candidate("second", SECOND_FLAGS)
        code, doc = self.gate(model, "second")
        if code != 0:
            reasons = "; ".join(doc.get("reasons", []))
            raise StageFailed(f"the second good model was refused: gate exit {code}: {reasons}")
        p = self.promote(model, self.dir / "gate" / "second.verdict.json", self.image_flags(model, "v2"))
        if p["sha256"] != self.sha["second"] or p["version"] != 2:
            raise StageFailed(f"registry should hold version 2 = {self.sha['second'][:12]}, "
                              f"shows {p['version']}")
        second, second_digest = self.serve_production("v2"), p.get("image_digest")
        self.registry("rollback")
        p = self.pointer()
        if p["sha256"] != self.sha["candidate"] or p.get("restores_version") != 1:
            raise StageFailed(f"rollback should restore version 1 ({self.sha['candidate'][:12]}), "
                              f"pointer is {p['sha256'][:12]}")
        if self.ship and p.get("image_digest") in (None, second_digest):
            raise StageFailed(f"the rollback should restore version 1's image, pointer has "
                              f"{p.get('image_digest')}")
        back = self.serve_production("v3")
        how = "switched the running container" if self.ship else "restarted"
        return f"promoted second model, {second}; rolled back, {how}: {back} (first model)"

    def stage_monitor(self) -> str:
        try:
            return pipeline_monitor.run(self)
        except pipeline_monitor.MonitorFailed as e:
            raise StageFailed(str(e)) from None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", default=os.environ.get("PIPELINE_DIR") or ".pipeline",
                   help="work folder and report.json (default: $PIPELINE_DIR or .pipeline)")
    p.add_argument("--week-size", type=int, default=500, help="images per published week (default 500)")
    p.add_argument("--worse-flags", default=os.environ.get("PIPELINE_WORSE_FLAGS") or WORSE_FLAGS,
                   help="train.py flags of the deliberately worse candidate "
                        "(default: a 1-epoch softmax regression)")
    args = p.parse_args(argv)
    if not 10 <= args.week_size <= 20000:
        p.error(f"--week-size must be within 10..20000, got {args.week_size}")
    show_library_log()
    return Rehearsal(args).main()


if __name__ == "__main__":
    sys.exit(main())
