"""The OIP body as clients send it: JSON with or without a Content-Type, or the binary tensor data
extension (a JSON header whose length is in ``Inference-Header-Content-Length``, then raw tensor bytes).

Reading is bounded like every JSON body (``max_json_bytes``, the number count); the tensor bytes are
checked against the declared shape and datatype before numpy sees them.
"""
from __future__ import annotations

import math

import falcon
import numpy as np

from .errors import InputError, UnsupportedType
from .parsing import JSON_TYPES, media_type, parse_json, read_body
from .resources import media_json

HEADER = "Inference-Header-Content-Length"
OCTET = "application/octet-stream"
# Triton's and KServe's clients send the JSON body without a Content-Type: read it as JSON.
BODY_TYPES = frozenset(JSON_TYPES | {"", OCTET})
INPUT_DTYPES = {"FP32": np.dtype("<f4"), "UINT8": np.dtype("u1")}


def read(req: falcon.Request, settings) -> tuple[object, memoryview]:
    """(the decoded JSON part, the bytes after it) of an infer request body; 400/413/415 when bad."""
    mt = media_type(req)
    if mt not in BODY_TYPES:
        raise UnsupportedType(f"Content-Type {mt!r} is not accepted; use application/json (or none), or "
                              f"{OCTET} with an {HEADER} header for binary tensors")
    encoding = (req.get_header("Content-Encoding") or "identity").strip().lower()
    if encoding != "identity":
        raise UnsupportedType(f"Content-Encoding {encoding!r} is not accepted; send the body uncompressed")
    declared = req.get_header(HEADER)
    if declared is None and mt == OCTET:
        raise InputError(f"an {OCTET} body needs an {HEADER} header: the length of its JSON part")
    body = read_body(req, settings.max_json_bytes)
    if declared is None:
        return parse_json(body, settings), memoryview(b"")
    text = declared.strip()
    if not (text.isascii() and text.isdigit() and 0 < int(text) <= len(body)):
        raise InputError(f"{HEADER} must be the byte length of the JSON part, 1..{len(body)}, "
                         f"got {declared[:40]!r}")
    cut = int(text)
    return parse_json(body[:cut], settings), memoryview(body)[cut:]


def input_array(datatype: str, shape: tuple, size: int, rest: memoryview) -> np.ndarray:
    """The input tensor from the bytes after the JSON header: ``size`` bytes, little-endian, C order."""
    dtype = INPUT_DTYPES[datatype]
    need = math.prod(shape) * dtype.itemsize
    if size != need:
        raise InputError(f"binary_data_size is {size} but a {datatype} tensor of shape {list(shape)} "
                         f"takes {need} bytes")
    if len(rest) != size:
        raise InputError(f"binary_data_size is {size} but {len(rest)} bytes follow the JSON header")
    return np.frombuffer(rest, dtype).reshape(shape)


def no_trailing_bytes(rest: memoryview) -> None:
    """Refuse bytes after the JSON header when no input declared them."""
    if len(rest):
        raise InputError(f"{len(rest)} bytes follow the JSON header but no input has "
                         f"parameters.binary_data_size")


def respond(resp: falcon.Response, head: dict, payload: list) -> None:
    """Send ``head`` as JSON, followed by ``payload`` (binary outputs) under the extension's header."""
    data = media_json(head)
    if not payload:
        resp.data, resp.content_type = data, falcon.MEDIA_JSON
        return
    resp.set_header(HEADER, str(len(data)))
    resp.data = b"".join([data, *payload])
    resp.content_type = OCTET
