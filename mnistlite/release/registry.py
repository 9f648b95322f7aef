"""Model registry on any S3-compatible store: content-addressed models plus a production pointer.

Layout under s3://BUCKET/PREFIX/:
  models/sha256-<hash>.npz      the model files, keyed by the SHA-256 of their bytes
  models/history/<version>.json  one entry per promotion or rollback, written once (If-None-Match: *)
  models/production.json         a copy of the latest history entry, swapped with If-Match on its ETag

Each entry records what ships together: the model's sha256 and, when an image was built around it,
that image's repository and digest (``image_digest``: "sha256:<64 hex>"), plus metrics and git commit.
A rollback gives back the previous (model, image digest) pair.

A new version N+1 is claimed by creating history entry N+1; the pointer only ever moves from entry
N to entry N+1, so concurrent promotions serialize and none is lost. A writer that finds N+1 taken
first helps move the pointer to it, so a crash between the two writes heals on the next promotion.
"""
from __future__ import annotations

import hashlib
import json
import time

import numpy as np

from ..data.s3 import make_client
from ..files import atomic_write_bytes, utc_now
from ..serialize import ModelFileError, loads
from .registry_records import (  # noqa: F401  (re-exported: the registry's public names)
    BadModelFile,
    NoProductionModel,
    RegistryError,
    _scalars,
    check_entry,
    check_image,
    history_key,
    image_ref,
    model_key,
    parse_url,
)

SCHEMA = "mnistlite.registry/1"
POINTER = "models/production.json"
_CONFLICT = ("PreconditionFailed", "ConditionalRequestConflict", "412", "409")
# If-Match on a key that does not exist: AWS and moto answer 404, SeaweedFS 412. Both mean "not written".
_MISSING = ("NoSuchKey", "404", "NotFound")


class Registry:
    """The registry at ``url`` (s3://BUCKET/PREFIX); ``endpoint_url`` for SeaweedFS, MinIO and other
    S3-compatibles."""

    def __init__(self, url: str, endpoint_url: str | None = None, *, client=None, max_attempts: int = 50):
        self.url = url.rstrip("/")
        self.bucket, self.prefix = parse_url(url)
        self.max_attempts = max_attempts
        self._rng = np.random.default_rng()  # jitter between retries: fresh entropy on purpose
        # 4 attempts per S3 call (3 retries with backoff); _append loops on its own over write conflicts
        self.s3 = client if client is not None else make_client(endpoint_url, max_attempts=4)
        self.endpoint_url = endpoint_url

    # ---- plumbing ------------------------------------------------------------------------------
    def _key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def _where(self, rel: str) -> str:
        return f"s3://{self.bucket}/{self._key(rel)}"

    def _call(self, op: str, rel: str | None, **kw):
        """Run one S3 call on key ``rel`` (None: bucket-level); (response, None) or (None, error code).

        Missing keys and failed preconditions come back as codes; everything else raises RegistryError.
        """
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            EndpointConnectionError,
            NoCredentialsError,
        )

        where = self._where(rel) if rel is not None else self.url
        if rel is not None:
            kw["Key"] = self._key(rel)
        try:
            return getattr(self.s3, op)(Bucket=self.bucket, **kw), None
        except ClientError as e:
            code = str(e.response.get("Error", {}).get("Code", ""))
            if code in _MISSING or code in _CONFLICT:
                return None, code
            if code == "NoSuchBucket":
                raise RegistryError(f"bucket {self.bucket!r} does not exist ({self.url})") from None
            msg = e.response.get("Error", {}).get("Message", "")
            raise RegistryError(f"S3 {op} {where} failed: {code} {msg}".strip()) from None
        except EndpointConnectionError:
            endpoint = self.endpoint_url or "(AWS default)"
            raise RegistryError(f"cannot reach the S3 endpoint {endpoint}") from None
        except NoCredentialsError:
            raise RegistryError("no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                                "or a profile") from None
        except BotoCoreError as e:
            raise RegistryError(f"S3 {op} {where} failed: {e}") from None

    def _get_json(self, rel: str):
        """(document, ETag) of a JSON object, or (None, None) when it does not exist."""
        r, _ = self._call("get_object", rel)
        if r is None:
            return None, None
        try:
            doc = json.loads(r["Body"].read())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise RegistryError(f"{self._where(rel)} is not valid JSON ({e})") from None
        if rel == POINTER or rel.startswith("models/history/"):
            check_entry(doc, self._where(rel))
        return doc, r["ETag"]

    def _put(self, rel: str, body: bytes, **cond) -> bool:
        """Conditional PutObject; False when the precondition failed (someone else wrote first)."""
        ctype = "application/json" if rel.endswith(".json") else "application/octet-stream"
        r, code = self._call("put_object", rel, Body=body, ContentType=ctype, **cond)
        # None: a failed precondition (412/409), or If-Match on a missing key (404 or 412)
        return r is not None

    def _sleep(self, attempt: int):
        time.sleep(float(self._rng.uniform(0, min(0.5, 0.01 * 2 ** attempt))))

    # ---- reading -------------------------------------------------------------------------------
    def pointer(self) -> dict | None:
        """The production pointer (the latest history entry), or None before the first promotion."""
        return self._get_json(POINTER)[0]

    def show(self) -> dict:
        """The production pointer; RegistryError if nothing was promoted yet."""
        p = self.pointer()
        if p is None:
            raise NoProductionModel(f"no production model yet in {self.url}")
        return p

    def history(self) -> list[dict]:
        """All history entries, oldest first."""
        out, kw = [], {"Prefix": self._key("models/history/")}
        while True:
            page, _ = self._call("list_objects_v2", None, **kw)
            for obj in (page or {}).get("Contents", []):
                doc = self._get_json(obj["Key"][len(self._key("")):])[0]
                if doc is not None:
                    out.append(doc)
            if not (page or {}).get("IsTruncated"):
                return sorted(out, key=lambda d: d["version"])
            kw["ContinuationToken"] = page["NextContinuationToken"]

    # ---- writing -------------------------------------------------------------------------------
    def _append(self, make_entry) -> tuple[dict, bool]:
        """Add history entry N+1 = make_entry(pointer) and move the pointer to it; (entry, changed)."""
        for attempt in range(self.max_attempts):
            current, etag = self._get_json(POINTER)
            n = current["version"] if current else 0
            entry = make_entry(current)
            if entry is None:  # nothing to do (e.g. the model is already in production)
                return current, False
            entry = {"schema": SCHEMA, "version": n + 1, **entry}
            body = json.dumps(entry, indent=2, sort_keys=True).encode()
            mine = self._put(history_key(n + 1), body, IfNoneMatch="*")
            if mine:
                # read back: an endpoint that ignores If-None-Match shows here as someone else's entry
                mine = self._get_json(history_key(n + 1))[0] == entry
            if not mine:  # version N+1 is taken: help its writer move the pointer, then retry
                other, _ = self._get_json(history_key(n + 1))
                if other is None:
                    self._sleep(attempt)
                    continue
                body = json.dumps(other, indent=2, sort_keys=True).encode()
            cond = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
            self._put(POINTER, body, **cond)  # a refusal means someone else already moved it past N
            if mine:
                return entry, True
            self._sleep(attempt)
        raise RegistryError(f"gave up after {self.max_attempts} attempts: "
                            f"too many concurrent writers on {self.url}")

    def promote(self, path, metrics: dict | None = None, git_commit: str | None = None, *,
                image_digest: str | None = None, image_repository: str | None = None) -> tuple[dict, bool]:
        """Upload the model file at ``path`` and make it production, with the image that serves it.

        Returns (entry, changed); ``changed`` is False when that exact (model, image digest) pair is
        already production.
        Corrupt files and malformed digests are refused.
        """
        image_digest, image_repository = check_image(image_digest, image_repository)
        try:
            with open(path, "rb") as f:
                blob = f.read()
        except OSError as e:
            raise RegistryError(f"{path}: cannot read model file ({e.strerror or e})") from None
        try:
            model = loads(blob, name=str(path))
        except ModelFileError as e:
            raise BadModelFile(str(e)) from None
        sha = hashlib.sha256(blob).hexdigest()
        metrics = _scalars(metrics if metrics is not None else model.metadata.get("metrics"))
        if metrics.get("model_sha256") not in (None, sha):
            raise RegistryError(f"metrics are for model {metrics['model_sha256'][:12]}, "
                                f"not {sha[:12]} ({path})")
        # content-addressed: if the key exists it already holds these exact bytes
        self._put(model_key(sha), blob, IfNoneMatch="*")

        def make(current):
            if current and current["sha256"] == sha and current.get("image_digest") == image_digest:
                return None
            return {"action": "promote", "sha256": sha, "key": self._key(model_key(sha)), "size": len(blob),
                    "image_digest": image_digest, "image_repository": image_repository,
                    "previous_image_digest": current.get("image_digest") if current else None,
                    "layer_sizes": model.layer_sizes, "metrics": metrics, "git_commit": git_commit,
                    "time": utc_now(), "previous_sha256": current["sha256"] if current else None,
                    "rollback_version": current["version"] if current else None}

        return self._append(make)

    def rollback(self, git_commit: str | None = None) -> dict:
        """Make the model before the current one production again (a new version; history stays append-only).

        Repeated rollbacks keep walking back: each entry remembers which version a rollback restores.
        """
        def make(current):
            if current is None:
                raise RegistryError(f"no production model yet in {self.url}: nothing to roll back")
            target_version = current.get("rollback_version")
            if not target_version:
                raise RegistryError(f"version {current['version']} ({current['sha256'][:12]}) has no earlier "
                                    f"model to roll back to")
            target, _ = self._get_json(history_key(target_version))
            if target is None:
                raise RegistryError(f"history entry {self._where(history_key(target_version))} is missing")
            if self._call("head_object", model_key(target["sha256"]))[0] is None:
                raise RegistryError(f"model file {self._where(model_key(target['sha256']))} is missing")
            return {"action": "rollback", "sha256": target["sha256"], "key": target["key"],
                    "image_digest": target.get("image_digest"),
                    "image_repository": target.get("image_repository"),
                    "previous_image_digest": current.get("image_digest"),
                    "size": target.get("size"), "layer_sizes": target.get("layer_sizes"),
                    "metrics": target.get("metrics", {}),
                    "git_commit": git_commit or target.get("git_commit"),
                    "time": utc_now(), "previous_sha256": current["sha256"],
                    "rollback_version": target.get("rollback_version"), "restores_version": target_version}

        return self._append(make)[0]

    def model_bytes(self, sha256: str) -> bytes:
        """The bytes of the stored model with this SHA-256, checked against it."""
        r, _ = self._call("get_object", model_key(sha256))
        if r is None:
            raise RegistryError(f"model file {self._where(model_key(sha256))} is missing")
        blob = r["Body"].read()
        if hashlib.sha256(blob).hexdigest() != sha256:
            raise RegistryError(f"hash mismatch for {self._where(model_key(sha256))}: "
                                f"the stored bytes are damaged")
        return blob

    def fetch(self, out) -> dict:
        """Download the production model to ``out`` (atomically) after checking its SHA-256; returns the
        pointer."""
        p = self.show()
        r, _ = self._call("get_object", model_key(p["sha256"]))
        if r is None:
            raise RegistryError(f"production model {self._where(model_key(p['sha256']))} is missing")
        blob = r["Body"].read()
        got = hashlib.sha256(blob).hexdigest()
        if got != p["sha256"]:
            raise RegistryError(f"hash mismatch for {self._where(model_key(p['sha256']))}: expected "
                                f"{p['sha256']}, got {got}; not written to {out}")
        try:
            atomic_write_bytes(out, blob)
        except OSError as e:
            raise RegistryError(f"cannot write {out} ({e.strerror or e})") from None
        return p
