"""Weekly data on S3 (``s3://BUCKET/PREFIX/week-N/``): the boto3 side — clients, errors, listing, upload.

Creates clients (retries with backoff, custom endpoints), turns botocore failures into ``S3Error``
subclasses with one-line messages, lists and selects week folders, and publishes weeks. Downloading
lives in ``mnistlite.data.fetch``. boto3 is imported only here (and in ``mnistlite.model_registry``).
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import tarfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

WEEK_PATTERN = re.compile(r"week[ _-]?([0-9]+)", re.IGNORECASE)
TARBALL = "images.tar.gz"


class S3Error(RuntimeError):
    """An S3 operation failed; ``str(e)`` is a one-line message saying what to check.

    ``code`` names the kind for machines: "s3_error" here, the snake_case class name in subclasses.
    """

    code = "s3_error"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.code = re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()


class NoSuchBucket(S3Error):
    """The bucket does not exist."""


class AccessDenied(S3Error):
    """The credentials may not read or write there (or are wrong)."""


class NoCredentials(S3Error):
    """No AWS credentials were found."""


class NoWeeks(S3Error):
    """The prefix holds no week-N folders."""


class UnknownWeek(S3Error):
    """A requested week does not exist."""


class EndpointUnreachable(S3Error):
    """Nothing answers at the S3 endpoint."""


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
    # A session per client: boto3's shared default session is not safe to create clients from in threads.
    return boto3.session.Session().client("s3", endpoint_url=endpoint_url or None, config=config)


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
        raise EndpointUnreachable(f"cannot reach endpoint {endpoint} (is it running? check the endpoint URL "
                                  f"or AWS_ENDPOINT_URL)") from e
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
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=base, Delimiter="/")
        for page in pages:
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
    """Pick weeks by ``spec``: "latest", "all", "N" (or "week-N"), or a range "A-B" (every week must
    exist)."""
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
        list(pool.map(put, zip(keys, files.values(), strict=True)))
    return keys
