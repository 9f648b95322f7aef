"""The rehearsal's image path (mnistlite/cli/pipeline_image.py), for real: a model built into the service
image, pushed to a local docker-registry, signed, verified and run by digest as the chart runs it.

Registry -> image: the container run by a digest answers /v1/model with the sha256 of the model built into
it; a wrong expectation and a tampered signature are refused. Skips (with the reason) where no container
engine can start; `make pipeline` runs the same code in its serve and rollback stages.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from mnistlite.cli.local_service import ServiceError
from mnistlite.cli.pipeline_image import ImageShip
from mnistlite.cli.rehearsal import StageFailed, Steps
from mnistlite.serialize import file_sha256

pytestmark = pytest.mark.slow


class _Args:
    def __init__(self, folder: Path):
        self.dir, self.week_size, self.worse_flags = folder, 10, ""


@pytest.fixture(scope="module")
def ship(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ship")
    steps = Steps(_Args(folder))
    steps.env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    shipper = ImageShip(steps, folder / "image")
    reason = shipper.start()
    if reason:
        shipper.stop()
        pytest.skip(f"the image path cannot run here: {reason}")
    yield shipper
    shipper.stop()


def test_the_image_run_by_digest_serves_the_bytes_it_was_built_with(ship, small_model_path):
    sha = file_sha256(small_model_path)
    digest = ship.ship(small_model_path, "t1", sha)
    assert digest.startswith("sha256:") and len(digest) == 71
    assert ship.tags() == ["t1"]
    detail = ship.serve(digest, sha)
    assert f"/v1/model sha256 {sha[:12]}" in detail and f"@{digest}" in detail
    assert ship.served == [{"image_digest": digest, "served_sha256": sha, "expected_sha256": sha}]
    first = ship.container
    # the registry pairing another model with this digest would be caught: /v1/model disagrees
    with pytest.raises(ServiceError, match=f"/v1/model serves {sha}, expected 0+$"):
        ship.serve(digest, "0" * 64)
    assert ship.container == first   # a failed switch leaves the running container alone


def test_a_tampered_signature_is_refused_before_anything_runs(ship, small_model_path):
    sha = file_sha256(small_model_path)
    digest = ship.ship(small_model_path, "t2", sha)
    signature = ship.work / f"signature-{digest[7:19]}"
    signature.write_bytes(signature.read_bytes()[:-8] + b"\0" * 8)
    served = len(ship.served)
    with pytest.raises(StageFailed, match="skopeo standalone-verify exited"):
        ship.serve(digest, sha)
    assert len(ship.served) == served
