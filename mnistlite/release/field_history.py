"""The field history: one record per (week, model), kept in the registry bucket next to the models.

Stored as one JSON document, ``s3://BUCKET/PREFIX/monitor/history.json``, changed by compare-and-swap:
read it with its ETag, merge, write with If-Match on that ETag (If-None-Match: * when creating it),
retry with jitter when another writer got there first. A read-back after each write confirms the
records are there, so an endpoint that ignored the condition shows up as a retry, not a lost record.
"""
from __future__ import annotations

import json

from .registry import Registry, RegistryError

HISTORY = "monitor/history.json"
SCHEMA = "mnistlite.field-history/1"


def record_key(record: dict) -> tuple:
    """A record is identified by its week and its model: scoring the same pair again replaces it."""
    return int(record["week"]), record["model_sha256"]


def merge(records: list, new: list) -> list:
    """``records`` with ``new`` added (replacing same-key ones), sorted by week then model."""
    by_key = {record_key(r): r for r in records}
    by_key.update({record_key(r): r for r in new})
    return [by_key[k] for k in sorted(by_key)]


class FieldHistory:
    """The field history of the registry ``registry`` (a ``Registry``: same bucket, client and errors)."""

    def __init__(self, registry: Registry):
        self.reg = registry

    @property
    def where(self) -> str:
        return self.reg._where(HISTORY)

    def records(self) -> list:
        """Every record, sorted by week then model; [] before the first append."""
        doc, _ = self.reg._get_json(HISTORY)
        return self._records(doc)

    def _records(self, doc) -> list:
        if doc is None:
            return []
        if not isinstance(doc, dict) or doc.get("schema") != SCHEMA \
                or not isinstance(doc.get("records"), list):
            raise RegistryError(f"{self.where} is not a field history ({SCHEMA}); move it aside")
        return doc["records"]

    def append(self, new: list) -> list:
        """Add ``new`` records atomically; returns the whole history as written."""
        mine = {record_key(r): r for r in new}
        for attempt in range(self.reg.max_attempts):
            doc, etag = self.reg._get_json(HISTORY)
            records = merge(self._records(doc), new)
            body = json.dumps({"schema": SCHEMA, "records": records}, indent=1, sort_keys=True).encode()
            cond = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
            if self.reg._put(HISTORY, body, **cond):
                stored = {record_key(r): r for r in self.records()}
                if all(stored.get(k) == r for k, r in mine.items()):
                    return records
            self.reg._sleep(attempt)
        raise RegistryError(f"gave up after {self.reg.max_attempts} attempts: too many concurrent writers "
                            f"on {self.where}")
