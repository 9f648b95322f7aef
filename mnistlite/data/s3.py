"""Weekly data on S3 (``s3://BUCKET/PREFIX/week-N/``): list weeks, fetch them, publish them.

Fetches are parallel, skip files already present with the same size and ETag, write every file
atomically (a killed fetch leaves no half-written file and simply resumes), and turn S3 failures
into ``S3Error`` subclasses with one-line messages. boto3 is imported only here (and in registry).
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import tarfile
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .idx import atomic_write_bytes

WEEK_PATTERN = re.compile(r"week[ _-]?([0-9]+)", re.IGNORECASE)
TARBALL = "images.tar.gz"
MANIFEST = ".etags.json"
QUARANTINE = "quarantine"
MAX_MEMBER_BYTES = 1 << 20          # a 28x28 PNG is < 1 KB; anything this big in a tarball is refused
_CHUNK = 1 << 20


class S3Error(RuntimeError):
    """An S3 operation failed; ``str(e)`` is a one-line message saying what to check."""

    code = "s3_error"


class NoSuchBucket(S3Error):
    code = "no_such_bucket"


class AccessDenied(S3Error):
    code = "access_denied"


class NoCredentials(S3Error):
    code = "no_credentials"


class NoWeeks(S3Error):
    code = "no_weeks"


class UnknownWeek(S3Error):
    code = "unknown_week"


class EndpointUnreachable(S3Error):
    code = "endpoint_unreachable"


def parse_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix/`` -> ("bucket", "some/prefix"); ValueError for anything else."""
    m = re.fullmatch(r"s3://([^/]+)/?(.*)", str(uri))
    if not m or not m.group(1):
        raise ValueError(f"expected s3://BUCKET[/PREFIX], got {uri!r}")
    return m.group(1), m.group(2).strip("/")


def week_number(name: str) -> int | None:
    """``"week-7"``, ``"week 7"`` (also ``week_7``, ``week7``) -> 7; None for other names."""
    m = WEEK_PATTERN.fullmatch(name.strip("/"))
    return int(m.group(1)) if m else None


def make_client(endpoint_url: str | None = None, *, max_attempts: int | None = None,
                connect_timeout: float = 5.0, read_timeout: float = 60.0, max_pool: int = 16):
    """A boto3 S3 client: the standard credential chain, ``endpoint_url`` or $AWS_ENDPOINT_URL(_S3),
    botocore "standard" retries with backoff (``max_attempts`` total, else $AWS_MAX_ATTEMPTS, else 5)."""
    import boto3
    from botocore.config import Config

    retries = {"mode": os.environ.get("AWS_RETRY_MODE", "standard")}
    if max_attempts is not None:
        retries["total_max_attempts"] = int(max_attempts)
    elif not os.environ.get("AWS_MAX_ATTEMPTS"):
        retries["total_max_attempts"] = 5
    endpoint_url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    config = Config(retries=retries, connect_timeout=connect_timeout, read_timeout=read_timeout,
                    max_pool_connections=max_pool)
    return boto3.client("s3", endpoint_url=endpoint_url or None, config=config)


@contextlib.contextmanager
def s3_errors(client, bucket: str, prefix: str = ""):
    """Translate botocore exceptions raised inside the block into one-line ``S3Error``s."""
    from botocore import exceptions as bx

    where = f"s3://{bucket}/{prefix}".rstrip("/")
    endpoint = getattr(getattr(client, "meta", None), "endpoint_url", None) or "the S3 endpoint"
    try:
        yield
    except (bx.EndpointConnectionError, bx.ConnectTimeoutError, bx.ConnectionClosedError,
            bx.ReadTimeoutError) as e:
        raise EndpointUnreachable(f"cannot reach endpoint {endpoint} (is it running? check --endpoint-url / "
                                  f"AWS_ENDPOINT_URL)") from e
    except (bx.NoCredentialsError, bx.PartialCredentialsError) as e:
        raise NoCredentials("no AWS credentials found (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
                            "AWS_PROFILE, or use an instance role)") from e
    except bx.ClientError as e:
        err = e.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        # A HEAD has no body, so a missing bucket comes back as a bare 404 from head_bucket.
        if code in ("NoSuchBucket", "404", "NotFound"):
            raise NoSuchBucket(f"no such bucket {bucket!r} (check the name and region)") from e
        if code in ("AccessDenied", "AllAccessDisabled", "InvalidAccessKeyId", "SignatureDoesNotMatch",
                    "InvalidToken", "ExpiredToken", "InvalidClientTokenId", "403") or status == 403:
            raise AccessDenied(f"access denied to {where} (check credentials/policy)") from e
        raise S3Error(f"S3 error on {where}: {code or status} {err.get('Message', '')}".strip()) from e


@dataclass
class Week:
    """One week folder on S3: its number, the local folder name, and its S3 key prefix(es)."""

    number: int
    prefixes: list = field(default_factory=list)   # more than one means "week 7" and "week-7" both exist

    @property
    def name(self) -> str:
        return f"week-{self.number}"


def list_weeks(client, bucket: str, prefix: str) -> list:
    """Week folders directly under ``prefix``, sorted numerically (week-10 after week-9)."""
    base = f"{prefix}/" if prefix else ""
    weeks: dict = {}
    with s3_errors(client, bucket, prefix):
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=base, Delimiter="/"):
            for cp in page.get("CommonPrefixes", []):
                n = week_number(cp["Prefix"][len(base):])
                if n is not None:
                    weeks.setdefault(n, Week(n)).prefixes.append(cp["Prefix"])
    return [weeks[n] for n in sorted(weeks)]


def _span(weeks: list) -> str:
    names = [w.name for w in weeks]
    return ", ".join(names) if len(names) <= 4 else f"{names[0]} … {names[-1]}"


def parse_week_spec(spec: str):
    """"latest" | "all" | "N" | "week-N" | "A-B" -> "latest", "all" or (A, B); ValueError otherwise."""
    text = str(spec).strip().lower()
    if text in ("latest", "all"):
        return text
    m = re.fullmatch(r"(?:week[ _-]?)?([0-9]+)(?:-([0-9]+))?", text)
    if not m:
        raise ValueError(f"week must be latest, all, N or A-B (e.g. 3-7), got {spec!r}")
    lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
    if hi < lo:
        raise ValueError(f"week range {spec!r} is empty (start after end)")
    return lo, hi


def select_weeks(weeks: list, spec: str, uri: str) -> list:
    """Pick weeks by ``spec``: "latest", "all", "N" (or "week-N"), or a range "A-B" (every week must exist)."""
    parsed = parse_week_spec(spec)
    if not weeks:
        raise NoWeeks(f"no weeks under {uri} (expected week-N folders)")
    by_number = {w.number: w for w in weeks}
    if parsed == "latest":
        chosen = [weeks[-1]]
    elif parsed == "all":
        chosen = list(weeks)
    else:
        lo, hi = parsed
        missing = [n for n in range(lo, hi + 1) if n not in by_number]
        if missing:
            raise UnknownWeek(f"unknown week {missing[0]} under {uri} (available: {_span(weeks)})")
        chosen = [by_number[n] for n in range(lo, hi + 1)]
    for w in chosen:
        if len(w.prefixes) > 1:
            both = " and ".join(repr(p.rstrip("/").rsplit("/", 1)[-1]) for p in w.prefixes)
            raise S3Error(f"week {w.number} is stored twice under {uri} ({both}); keep one")
    return chosen


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
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
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


def upload_week(uri: str, files: dict, *, tarball: bool = False, endpoint_url: str | None = None,
                jobs: int = 8, client=None) -> list:
    """Upload ``{name: bytes}`` to ``s3://BUCKET/PREFIX/week-K/`` as separate objects or one images.tar.gz.

    Returns the keys written; ``uri`` must end in a week folder (week-K or "week K").
    """
    bucket, prefix = parse_uri(uri)
    if week_number(prefix.rsplit("/", 1)[-1]) is None:
        raise ValueError(f"target must end in a week folder like s3://BUCKET/PREFIX/week-3, got {uri!r}")
    client = client or make_client(endpoint_url, max_pool=max(10, jobs))
    if tarball:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            for name, data in sorted(files.items()):
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(data), 0o644, 0
                tar.addfile(info, io.BytesIO(data))
        files = {TARBALL: buf.getvalue()}
    keys = [f"{prefix}/{name}" for name in files]
    with s3_errors(client, bucket, prefix):
        client.head_bucket(Bucket=bucket)   # one clear error before a pool of failing uploads

    def put(item):
        key, data = item
        with s3_errors(client, bucket, key):
            client.put_object(Bucket=bucket, Key=key, Body=data)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        list(pool.map(put, zip(keys, files.values())))
    return keys
