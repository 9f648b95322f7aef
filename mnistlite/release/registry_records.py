"""The registry's records: where things live under the prefix, and what a valid entry holds (the model's
sha256, an image digest and repository, the scalar metrics kept with them)."""
from __future__ import annotations

import re

from ..data.s3 import parse_uri

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_REPOSITORY = re.compile(r"[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)+")  # host[:port]/path, no tag or digest


class RegistryError(RuntimeError):
    """A registry operation failed; the one-line message says what and where."""


class NoProductionModel(RegistryError):
    """Nothing has been promoted to this registry yet."""


class BadModelFile(RegistryError):
    """The model file given to promote is unreadable or damaged."""


def model_key(sha256: str) -> str:
    return f"models/sha256-{sha256}.npz"


def history_key(version: int) -> str:
    return f"models/history/{version:08d}.json"  # zero-padded so listing order is version order


def parse_url(url: str) -> tuple[str, str]:
    """"s3://bucket/some/prefix" -> ("bucket", "some/prefix"); ``data.s3.parse_uri`` raising RegistryError."""
    try:
        return parse_uri(url)
    except ValueError:
        raise RegistryError(f"registry must look like s3://BUCKET/PREFIX, got {url!r}") from None


def _scalars(metrics) -> dict:
    """Keep the top-level numbers and strings of a metrics or verdict document (no matrices); of a list
    of documents (the training metrics, then the verdict), each one's, later ones winning."""
    if isinstance(metrics, list):
        merged = {}
        for doc in metrics:
            merged.update(_scalars(doc))
        return merged
    if not isinstance(metrics, dict):
        return {}
    if isinstance(metrics.get("candidate"), dict):  # a verdict.json: the candidate's metrics
        metrics = metrics["candidate"]
    # local paths mean nothing to other machines
    return {k: v for k, v in metrics.items()
            if (isinstance(v, (int, float, str, bool)) or v is None) and k != "model_path"}


def check_image(digest: str | None, repository: str | None) -> tuple[str | None, str | None]:
    """Validate an image digest ("sha256:<64 hex>") and repository; RegistryError with the fix otherwise."""
    if digest is not None and not _DIGEST.fullmatch(digest):
        raise RegistryError(f"image digest must look like sha256:<64 lowercase hex>, got {digest!r}")
    if repository is not None:
        if digest is None:
            raise RegistryError(f"an image repository ({repository!r}) needs its digest too")
        if not _REPOSITORY.fullmatch(repository):
            raise RegistryError(f"image repository must be a lowercase name like ghcr.io/owner/repo "
                                f"(no tag or digest), got {repository!r}")
    return digest, repository


def check_entry(doc, where: str) -> None:
    """A pointer or history entry must name its model by 64 lowercase hex characters (the key and the
    hash check are built from it); RegistryError naming the entry otherwise."""
    sha = doc.get("sha256") if isinstance(doc, dict) else None
    if not (isinstance(sha, str) and _SHA256.fullmatch(sha)):
        raise RegistryError(f"{where} is not a valid registry entry: its sha256 must be 64 lowercase hex "
                            f"characters, got {sha!r}")


def image_ref(entry: dict) -> str | None:
    """"REPOSITORY@sha256:..." for an entry that records an image, else None."""
    if not entry.get("image_digest"):
        return None
    return f"{entry.get('image_repository') or ''}@{entry['image_digest']}".lstrip("@")
