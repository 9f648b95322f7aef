"""Approved candidates on S3, kept by the PR gate and fetched by the merge: build once, ship those bytes.

A candidate is keyed by what determines it: the git tree the PR gate trained (that of the merge ref,
which is the tree that lands on main when branches must be up to date) and the data weeks it saw.
Layout under ``s3://BUCKET/PREFIX``::

    <tree>/<weeks digest>/<model sha256>.npz    the model file, content-addressed
    <tree>/<weeks digest>/record.json           sha256, tree, weeks, verdict, training metrics, PR, run

``fetch`` returns the record only when the file's bytes hash to the record's sha256: a file that does not
is refused (``CandidateTampered``), never used and never replaced by a fresh fit without a word.
"""
from __future__ import annotations

import hashlib
import json
import re

from ..data.s3 import list_weeks, make_client, parse_uri, s3_errors
from ..files import atomic_write_bytes, utc_now
from ..serialize import ModelFileError, loads


class CandidateError(RuntimeError):
    """The store cannot be used (bad URI, unreadable record)."""


class CandidateMissing(CandidateError):
    """No approved candidate for this tree and these weeks: the merge trains its own."""


class CandidateTampered(CandidateError):
    """A stored candidate whose bytes do not match its record: refused."""


_TREE = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")


def weeks_digest(weeks: list[str]) -> str:
    """A short, order-free digest of week names: the part of the key the data decides."""
    return hashlib.sha256("\n".join(sorted(set(weeks))).encode()).hexdigest()[:16]


def key(tree: str, weeks: list[str]) -> str:
    """``<tree>/<weeks digest>``; ValueError for something that is not a git tree id."""
    if not _TREE.fullmatch(tree or ""):
        raise ValueError(f"tree must be a git tree id (git rev-parse HEAD^{{tree}}), got {tree!r}")
    return f"{tree}/{weeks_digest(weeks)}"


def data_weeks(data_uri: str, endpoint_url: str | None = None) -> list[str]:
    """The week folders under ``data_uri`` now (week-1, week-2, ...): what `make candidate` trains on."""
    bucket, prefix = parse_uri(data_uri)
    return [w.name for w in list_weeks(make_client(endpoint_url), bucket, prefix)]


class CandidateStore:
    """Approved candidates under ``s3://BUCKET/PREFIX`` (see the module's docstring)."""

    def __init__(self, url: str, endpoint_url: str | None = None, *, client=None):
        try:
            self.bucket, self.prefix = parse_uri(url)
        except ValueError as e:
            raise CandidateError(str(e)) from None
        self.url = url.rstrip("/")
        self.client = client or make_client(endpoint_url)

    def _key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def keep(self, model_path, tree: str, weeks: list[str], verdict: dict, metrics: dict | None = None,
             **source) -> dict:
        """Store an approved model file with its record; returns the record. Only a passing verdict."""
        if verdict.get("status") != "pass":
            raise CandidateError("only an approved candidate is kept; the verdict says "
                                 f"{verdict.get('status')!r}")
        with open(model_path, "rb") as f:
            blob = f.read()
        try:
            loads(blob, name=str(model_path))
        except ModelFileError as e:
            raise CandidateError(str(e)) from None
        sha = hashlib.sha256(blob).hexdigest()
        where = key(tree, weeks)
        record = {"sha256": sha, "tree": tree, "weeks": sorted(set(weeks)), "key": where,
                  "model": f"{where}/{sha}.npz", "verdict": verdict, "metrics": metrics or {},
                  "kept": utc_now(), **{k: v for k, v in source.items() if v is not None}}
        with s3_errors(self.client, self.bucket, self.prefix):
            self.client.put_object(Bucket=self.bucket, Key=self._key(record["model"]), Body=blob)
            # The record last: it is what makes the candidate visible.
            self.client.put_object(Bucket=self.bucket, Key=self._key(f"{where}/record.json"),
                                   Body=json.dumps(record, indent=2, sort_keys=True).encode())
        return record

    def fetch(self, tree: str, weeks: list[str], out) -> dict:
        """Write the approved model for (tree, weeks) to ``out`` and return its record.

        CandidateMissing when there is none; CandidateTampered when its bytes do not hash to the record's.
        """
        from botocore.exceptions import ClientError

        where = key(tree, weeks)
        try:
            with s3_errors(self.client, self.bucket, self.prefix):
                try:
                    raw = self.client.get_object(Bucket=self.bucket, Key=self._key(f"{where}/record.json"))
                except ClientError as e:
                    if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                        names = ", ".join(sorted(set(weeks))) or "(none)"
                        raise CandidateMissing(f"no approved candidate for tree {tree[:12]} and weeks "
                                               f"{names} in {self.url}") from None
                    raise
                record = json.loads(raw["Body"].read())
                model = self.client.get_object(Bucket=self.bucket, Key=self._key(record["model"]))
                blob = model["Body"].read()
        except (KeyError, ValueError) as e:
            raise CandidateError(f"{self.url}/{where}/record.json is not a candidate record ({e})") from None
        sha = hashlib.sha256(blob).hexdigest()
        if sha != record.get("sha256") or record.get("tree") != tree:
            raise CandidateTampered(f"the stored candidate {self.url}/{record['model']} has sha256 "
                                    f"{sha[:12]}, its record says {str(record.get('sha256'))[:12]}: refused; "
                                    "delete the key or re-run the PR gate")
        atomic_write_bytes(out, blob)
        return record
