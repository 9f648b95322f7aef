"""Download selected S3 weeks into local folders: parallel, resumable, skipping what is already there.

Skips files already present with the same size and ETag (``OUT/.etags.json``, else the MD5 of single-part
uploads), writes every file atomically (a killed fetch leaves no half-written file and simply resumes) and
unpacks ``images.tar.gz`` safely. Works on any S3 client object; boto3 itself is only touched in ``s3``.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tarfile
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..files import atomic_write_bytes
from .s3 import (
    TARBALL,
    S3Error,
    Week,
    list_weeks,
    make_client,
    parse_uri,
    parse_week_spec,
    s3_errors,
    select_weeks,
)

MANIFEST = ".etags.json"
QUARANTINE = "quarantine"
MAX_MEMBER_BYTES = 1 << 20          # a 28x28 PNG is < 1 KB; anything this big in a tarball is refused
_CHUNK = 1 << 20


@dataclass
class FetchResult:
    """What a fetch did for one week."""

    week: str
    folder: Path
    files: int = 0           # PNG files the week holds (tarball members included)
    downloaded: int = 0      # objects downloaded this run
    skipped: int = 0         # objects already present with the same size and ETag
    bytes: int = 0           # bytes downloaded this run
    ignored: list = field(default_factory=list)   # keys that are neither PNGs nor images.tar.gz


class _Manifest:
    """``OUT/.etags.json``: local path -> {etag, size[, members]}; saved atomically, at most once a second."""

    def __init__(self, root: Path):
        self.path = root / MANIFEST
        try:
            self.data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.data = {}
        self.lock = threading.Lock()
        self.saved = time.monotonic()

    def get(self, key):
        with self.lock:
            return self.data.get(key)

    def put(self, key, entry):
        with self.lock:
            self.data[key] = entry
            if time.monotonic() - self.saved > 1.0:
                self._save()

    def _save(self):
        atomic_write_bytes(self.path, json.dumps(self.data, indent=0, sort_keys=True).encode())
        self.saved = time.monotonic()

    def save(self):
        with self.lock:
            self._save()


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _present(path: Path, size: int, etag: str, entry) -> bool:
    """True when ``path`` (or its quarantined copy) already holds this object: same size and ETag."""
    for cand in (path, path.parent / QUARANTINE / path.name):
        try:
            if cand.stat().st_size != size:
                continue
        except OSError:
            continue
        if entry and entry.get("etag") == etag:
            return True
        # No manifest record (e.g. killed before it was saved): a single-part ETag is the MD5.
        if "-" not in etag and _md5(cand) == etag:
            return True
    return False


def _download(client, bucket: str, key: str, dest: Path, size: int) -> int:
    """Stream one object to a hidden temp file beside ``dest``, check its length, fsync, rename."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            body = client.get_object(Bucket=bucket, Key=key)["Body"]
            got = 0
            for chunk in iter(lambda: body.read(_CHUNK), b""):
                f.write(chunk)
                got += len(chunk)
            if got != size:
                raise S3Error(f"s3://{bucket}/{key}: got {got} bytes, expected {size} (connection cut?)")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest)
        return got
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _extract_pngs(tar_path: Path, folder: Path) -> list:
    """Write the PNG members of a tarball into ``folder`` (basename only, atomically); return their names."""
    names = []
    with tarfile.open(tar_path, mode="r:gz") as tar:
        for m in tar:
            base = os.path.basename(m.name)
            if not m.isfile() or not base.lower().endswith(".png") or base.startswith("."):
                continue        # links, folders, odd names: never followed, never written
            if m.size > MAX_MEMBER_BYTES:
                raise S3Error(f"{tar_path.name}: member {m.name} is {m.size} bytes, too big for a 28x28 PNG")
            atomic_write_bytes(folder / base, tar.extractfile(m).read())
            names.append(base)
    return names


def _clean_partials(folder: Path) -> None:
    """Remove temp files a killed fetch left behind (only our own ``.NAME.XXXX.part`` files)."""
    if folder.is_dir():
        for p in folder.glob(".*.part"):
            with contextlib.suppress(OSError):
                p.unlink()


def fetch_week(client, bucket: str, week: Week, out_dir, *, jobs: int = 8, progress=None,
               manifest: _Manifest | None = None) -> FetchResult:
    """Download one week into ``out_dir/week-N/`` (PNG files; a tarball is unpacked there)."""
    root = Path(out_dir)
    folder = root / week.name
    own_manifest = manifest is None
    manifest = manifest or _Manifest(root)
    result = FetchResult(week.name, folder)
    objects, prefix = [], week.prefixes[0]
    with s3_errors(client, bucket, prefix):
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/")
        for page in pages:
            objects += page.get("Contents", [])
    folder.mkdir(parents=True, exist_ok=True)
    _clean_partials(folder)
    tasks = []
    for obj in objects:
        name = obj["Key"][len(prefix):]
        etag, size = obj["ETag"].strip('"'), int(obj["Size"])
        local = f"{week.name}/{name}"
        if name == TARBALL:
            entry = manifest.get(local)
            if (entry and entry.get("etag") == etag and entry.get("size") == size
                    and all((folder / n).is_file() or (folder / QUARANTINE / n).is_file()
                            for n in entry.get("members", []))):
                result.skipped += 1
                result.files += len(entry.get("members", []))
                continue
            tasks.append((obj["Key"], local, size, etag, True))
        elif name.lower().endswith(".png") and "/" not in name:
            result.files += 1
            if _present(folder / name, size, etag, manifest.get(local)):
                result.skipped += 1
                continue
            tasks.append((obj["Key"], local, size, etag, False))
        else:
            result.ignored.append(obj["Key"])
    total = sum(t[2] for t in tasks)
    lock = threading.Lock()

    def one(task):
        key, local, size, etag, is_tar = task
        dest = root / local
        with s3_errors(client, bucket, key):
            got = _download(client, bucket, key, dest if not is_tar else folder / f".{TARBALL}", size)
        entry = {"etag": etag, "size": size}
        if is_tar:
            tar_tmp = folder / f".{TARBALL}"
            try:
                entry["members"] = _extract_pngs(tar_tmp, folder)
            except (tarfile.TarError, OSError, EOFError) as e:
                raise S3Error(f"s3://{bucket}/{key}: not a readable tar.gz ({e})") from None
            finally:
                with contextlib.suppress(FileNotFoundError):
                    tar_tmp.unlink()
        manifest.put(local, entry)
        with lock:
            result.downloaded += 1
            result.bytes += got
            if is_tar:
                result.files += len(entry["members"])
            if progress:
                progress(week.name, result.downloaded, len(tasks), result.bytes, total)

    try:
        if tasks:
            pool = ThreadPoolExecutor(max_workers=max(1, jobs))
            try:
                for _ in pool.map(one, tasks):
                    pass
            finally:   # on the first failure, drop queued downloads instead of failing each slowly
                pool.shutdown(wait=True, cancel_futures=True)
    finally:
        if own_manifest:
            manifest.save()
    return result


def fetch(uri: str, weeks: str = "latest", out_dir=".", *, endpoint_url: str | None = None, jobs: int = 8,
          progress=None, client=None) -> list:
    """Fetch the weeks selected by ``weeks`` ("latest", "all", "N", "A-B") from ``uri`` into ``out_dir``.

    Returns one FetchResult per week; raises S3Error (one-line message) or ValueError for a bad spec.
    """
    bucket, prefix = parse_uri(uri)
    parse_week_spec(weeks)              # a usage error, before any network traffic
    client = client or make_client(endpoint_url, max_pool=max(10, jobs))
    chosen = select_weeks(list_weeks(client, bucket, prefix), weeks, f"s3://{bucket}/{prefix}".rstrip("/"))
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    manifest = _Manifest(root)
    try:
        return [fetch_week(client, bucket, w, root, jobs=jobs, progress=progress, manifest=manifest)
                for w in chosen]
    finally:
        manifest.save()
