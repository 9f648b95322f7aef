"""Request bodies to arrays: bounded reads, the multipart ``file`` field, JSON instances, OIP tensors.

Every function raises ``InputError`` (or a kind of it) naming what is wrong, never a bare numpy or
JSON exception, so the error mapper can turn each into a 4xx.
"""
from __future__ import annotations

import io
import json
import math

import falcon
import numpy as np
from falcon.media import MultipartFormHandler

from .errors import BodyTimeout, BodyTooLarge, InputError, ServerBusy, UnsupportedType
from .multipart_fast import first_file

# Raw image bodies: Pillow sniffs the real format, so these only have to be plausible.
IMAGE_TYPES = frozenset({
    "image/png", "image/jpeg", "image/jpg", "image/gif", "image/bmp", "image/x-ms-bmp",
    "image/webp", "image/tiff", "image/x-portable-graymap", "application/octet-stream",
})
MULTIPART = "multipart/form-data"
JSON_TYPES = frozenset({"application/json"})
ACCEPTED = sorted(IMAGE_TYPES | JSON_TYPES | {MULTIPART})

_MULTIPART = MultipartFormHandler()  # stateless; built once, not per request


def _bare(content_type: str | None) -> str:
    return content_type.split(";", 1)[0].strip().lower() if content_type else ""


def media_type(req: falcon.Request) -> str:
    """The request's media type without parameters, lower-cased ('' when absent)."""
    return _bare(req.content_type)


def body_limit(content_type: str | None, settings) -> int:
    """The byte limit for a body of this Content-Type: JSON has its own, larger one."""
    return settings.max_json_bytes if _bare(content_type) in JSON_TYPES else settings.max_body_bytes


def read_body(req: falcon.Request, limit: int) -> bytes:
    """The whole body, at most ``limit`` bytes; a larger declared length is refused before reading.

    The server discards a refused body after the answer (service/connection.py), so the client can
    read the 413 instead of a connection reset.
    """
    length = req.content_length
    if length is not None and length > limit:
        raise BodyTooLarge(f"body is {length} bytes; the limit is {limit} bytes")
    try:
        if length is None and req.env.get("wsgi.input_terminated"):
            # Chunked body (gunicorn ends wsgi.input at its last chunk): read one byte past the limit
            # to tell "full" from "over". Without the flag, reading could block: treat as no body.
            data = req.stream.read(limit + 1)
        else:
            data = req.bounded_stream.read(limit + 1)
    except ServerBusy:  # the worker holds all the body bytes it may (service/connection.py): 503
        raise
    except TimeoutError as e:  # the server's body deadline (MNISTLITE_BODY_TIMEOUT)
        raise BodyTimeout(str(e)) from None
    if len(data) > limit:
        raise BodyTooLarge(f"body is over the limit of {limit} bytes")
    return data


def multipart_file(body: bytes, content_type: str, field: str = "file") -> bytes:
    """The bytes of form field ``field`` of a multipart/form-data ``body``."""
    data = first_file(body, content_type, field)   # the usual upload, without falcon's parser
    if data is not None:
        return data
    seen = []
    try:
        for part in _MULTIPART.deserialize(io.BytesIO(body), content_type, len(body)):
            if part.name == field:
                data = part.stream.read()
                if not data:
                    raise InputError(f"the {field!r} field is empty (an empty file was uploaded)")
                return data
            seen.append(part.name)
            part.stream.read()  # skip this part's content to reach the next one
    except falcon.HTTPBadRequest as e:  # MediaMalformedError, or HTTPInvalidHeader for a missing boundary
        raise InputError(f"malformed multipart/form-data body: {e.description or e.title}") from None
    raise InputError(f"multipart form has no {field!r} field (fields sent: {seen}); "
                     f"send the image as -F {field}=@digit.png")


def image_bytes(req: falcon.Request, settings) -> bytes:
    """The uploaded image of a multipart or raw-image request (415 for other types)."""
    mt = media_type(req)
    if mt == MULTIPART:
        return multipart_file(read_body(req, settings.max_body_bytes), req.content_type)
    if mt in IMAGE_TYPES:
        data = read_body(req, settings.max_body_bytes)
        if not data:
            raise InputError("the request body is empty; send the image bytes")
        return data
    raise UnsupportedType(f"Content-Type {mt or '(none)'!r} is not accepted; use one of {ACCEPTED}")


def json_body(req: falcon.Request, settings, also_types: frozenset = frozenset()):
    """The parsed JSON body (415 unless the type is JSON or in ``also_types``, 400 if it does not parse).

    ``also_types`` lets a protocol whose clients send JSON under another type ('' for none) read it.
    """
    mt = media_type(req)
    if mt not in JSON_TYPES and mt not in also_types:
        raise UnsupportedType(f"Content-Type {mt or '(none)'!r} is not accepted; use application/json")
    return parse_json(read_body(req, settings.max_json_bytes), settings)


def parse_json(body: bytes, settings):
    """``body`` parsed as JSON, refusing more numbers than a full batch holds (400/413)."""
    if not body:
        raise InputError("the request body is empty; send a JSON object")
    # A body of "0,0,0,..." would become millions of Python objects before any shape check: count
    # the separators first (one pass in C) and refuse more numbers than a full batch can hold.
    max_numbers = settings.max_batch * 784 + 1024
    if body.count(b",") > max_numbers:
        raise BodyTooLarge(f"the JSON body holds more than {max_numbers} values; "
                           f"the limit is {settings.max_batch} images of 784 numbers")
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as e:  # JSONDecodeError and bad UTF-8 are ValueErrors
        raise InputError(f"malformed JSON: {e}") from None


def pixels(values, what: str, max_batch: int, *, scale: float = 1.0, shape=None) -> np.ndarray:
    """Nested numbers (or an array) -> float32 (n, 784) in [0, 1]: n instances of 784 numbers or 28x28.

    ``scale`` maps the accepted range onto [0, 1] (255 for UINT8 tensors, which must be integers);
    ``shape`` (OIP) is the declared tensor shape that flat or nested ``values`` must fill exactly.
    """
    if not (isinstance(values, np.ndarray) or isinstance(values, list) and values):
        raise InputError(f"{what} must be a non-empty list of numbers")
    if shape is None and len(values) > max_batch:
        raise InputError(f"{what} holds {len(values)} images; the limit is {max_batch} per request")
    try:
        a = np.asarray(values)
    except (ValueError, TypeError, OverflowError, RecursionError):
        raise InputError(f"{what} must be a rectangular array of numbers (ragged or mixed nesting)") from None
    if a.dtype.kind not in "iuf":  # strings, booleans, objects (e.g. huge integers, null)
        raise InputError(f"{what} must hold only numbers, got {_kind(a)}")
    if shape is not None:
        if a.size != math.prod(shape):
            raise InputError(f"{what} holds {a.size} numbers but shape {list(shape)} "
                             f"needs {math.prod(shape)}")
        a = a.reshape(shape)
    if scale != 1.0 and a.dtype.kind == "f" and not (np.isfinite(a).all() and (a == np.round(a)).all()):
        raise InputError(f"{what} must hold integers 0..{_num(scale)} for UINT8")
    if a.ndim == 2 and a.shape[1] == 784:
        pass
    elif a.ndim == 3 and a.shape[1:] == (28, 28):
        a = a.reshape(a.shape[0], 784)
    else:
        raise InputError(f"each item of {what} must be 784 numbers or 28x28 nested lists, "
                         f"got shape {list(a.shape[1:])}")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise InputError(f"{what} holds NaN or infinite values")
    lo, hi = a.min(), a.max()
    if lo < 0 or hi > scale:
        raise InputError(f"{what} values must be in [0, {_num(scale)}], got {_num(lo)}..{_num(hi)}")
    x = a.astype(np.float32)
    if scale != 1.0:
        x *= np.float32(1.0 / scale)
    return x


def _kind(a: np.ndarray) -> str:
    return {"b": "booleans", "U": "strings", "S": "bytes",
            "O": "non-numbers (null, objects or huge integers)"}.get(
        a.dtype.kind, f"dtype {a.dtype}")


def _num(v) -> str:
    v = float(v)
    return str(int(v)) if math.isfinite(v) and v == int(v) else f"{v:g}"
