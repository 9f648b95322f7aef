"""The registry records (model, image digest) pairs, and rollback returns the previous pair."""
from __future__ import annotations

import pytest
from registry_kit import DIGESTS, IMAGE, assert_chain, client

from mnistlite.release.registry import RegistryError, image_ref
from mnistlite.serialize import file_sha256


def test_promotion_records_the_image_digest_and_rollback_returns_the_previous_pair(reg, model_files):
    a, b = model_files[:2]
    e1, _ = reg.promote(a, image_digest=DIGESTS[0], image_repository=IMAGE)
    assert (e1["sha256"], e1["image_digest"], e1["image_repository"]) == (file_sha256(a), DIGESTS[0], IMAGE)
    assert image_ref(e1) == f"{IMAGE}@{DIGESTS[0]}"
    # the same model in a new image (service code changed) is a new version; the same pair is a no-op
    e2, changed = reg.promote(a, image_digest=DIGESTS[1], image_repository=IMAGE)
    assert changed and e2["version"] == 2 and e2["previous_image_digest"] == DIGESTS[0]
    assert reg.promote(a, image_digest=DIGESTS[1], image_repository=IMAGE) == (e2, False)
    e3, _ = reg.promote(b, image_digest=DIGESTS[2], image_repository=IMAGE)
    assert reg.show()["image_digest"] == DIGESTS[2]
    r = reg.rollback()
    assert (r["sha256"], r["image_digest"], r["image_repository"]) == (file_sha256(a), DIGESTS[1], IMAGE)
    assert (r["previous_sha256"], r["previous_image_digest"]) == (file_sha256(b), DIGESTS[2])
    assert reg.show() == r
    r2 = reg.rollback()
    assert (r2["sha256"], r2["image_digest"]) == (file_sha256(a), DIGESTS[0])
    assert_chain(reg)


@pytest.mark.parametrize("digest, repository, match", [
    ("sha256:abc", None, "image digest must look like"),
    (DIGESTS[0].upper(), None, "image digest must look like"),
    ("md5:" + "0" * 64, None, "image digest must look like"),
    (None, IMAGE, "needs its digest too"),
    (DIGESTS[0], "ghcr.io/Owner/Repo", "lowercase name"),
    (DIGESTS[0], f"{IMAGE}:v1", "lowercase name"),
    (DIGESTS[0], f"{IMAGE}@{DIGESTS[0]}", "lowercase name"),
])
def test_malformed_image_references_are_refused_before_any_write(reg, model_files, digest, repository, match):
    with pytest.raises(RegistryError, match=match):
        reg.promote(model_files[0], image_digest=digest, image_repository=repository)
    assert client(reg).list_objects_v2(Bucket=reg.bucket).get("KeyCount") == 0
