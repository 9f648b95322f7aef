"""Every route of a running service image, once, with each input kind and the usual mistakes.

Usage: python3 tools/image/routes_check.py BASE_URL DIGIT_PNG DIGIT_JPEG

tools/image_check.sh runs it against the container: the image keeps only the standard library the
service imports, so a code path that imports something more fails here (a 500), not in production.
Standard library only: it runs with the machine's python3. Exit 0, or 1 with one line per failure.
"""
from __future__ import annotations

import json
import struct
import sys
import urllib.error
import urllib.request
import uuid
import zlib

DIGIT = 7


def gray_png_pixels(png: bytes) -> list[int]:
    """The pixels of an 8-bit grey, non-interlaced PNG (what tests/data/digit_7.png is), row-major."""
    width, height, depth, colour = struct.unpack(">IIBB", png[16:26])
    if (depth, colour) != (8, 0):
        raise ValueError(f"expected an 8-bit grey PNG, got depth {depth}, colour type {colour}")
    pos, idat = 8, b""
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        if kind == b"IDAT":
            idat += png[pos + 8:pos + 8 + length]
        pos += 12 + length
    raw, rows, prev = zlib.decompress(idat), [], [0] * width
    for y in range(height):
        kind, line = raw[y * (width + 1)], list(raw[y * (width + 1) + 1:(y + 1) * (width + 1)])
        for x in range(width):
            a = line[x - 1] if x else 0
            b, c = prev[x], prev[x - 1] if x else 0
            pred = {0: 0, 1: a, 2: b, 3: (a + b) // 2}.get(kind)
            if pred is None:  # Paeth
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
            line[x] = (line[x] + pred) & 0xFF
        rows += line
        prev = line
    return rows


def request(base: str, method: str, path: str, body: bytes | None = None, ctype: str | None = None):
    req = urllib.request.Request(base + path, data=body, method=method)
    if ctype:
        req.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read()


def multipart(png: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"d.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + png + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def checks(png: bytes, jpeg: bytes):
    """(method, path, body, content type, expected status, what the answer must hold)."""
    pixels = [p / 255 for p in gray_png_pixels(png)]
    instances = json.dumps({"instances": [pixels, pixels]}).encode()
    infer = json.dumps({"inputs": [{"name": "input", "shape": [1, 784], "datatype": "FP32",
                                    "data": pixels}]}).encode()
    form, form_type = multipart(png)
    one = lambda a: a["predicted_class"] == DIGIT  # noqa: E731
    yield "GET", "/", None, None, 200, lambda a: True
    for name in ("app.js", "pad.js", "style.css", "favicon.svg"):
        yield "GET", f"/static/{name}", None, None, 200, lambda a: True
    for path in ("/liveness", "/readiness", "/v1/model", "/openapi.json", "/v2",
                 "/v2/health/live", "/v2/health/ready", "/v2/models/mnistlite", "/v2/models/mnistlite/ready"):
        yield "GET", path, None, None, 200, lambda a: True
    yield "POST", "/predict", form, form_type, 200, one
    yield "POST", "/predict", png, "image/png", 200, one
    yield "POST", "/predict?explain=1", jpeg, "image/jpeg", 200, one
    yield "POST", "/predict?explain=1", instances, "application/json", 200, \
        lambda a: [p["predicted_class"] for p in a["predictions"]] == [DIGIT, DIGIT]
    yield "POST", "/v2/models/mnistlite/infer", infer, "application/json", 200, lambda a: "outputs" in a
    # Mistakes: each a 4xx JSON answer, never a 500 or a traceback.
    yield "POST", "/predict", b"not an image", "image/png", 400, lambda a: True
    yield "POST", "/predict", b"{", "application/json", 400, lambda a: True
    yield "POST", "/predict", b"hello", "text/plain", 415, lambda a: True
    yield "POST", "/v2/models/mnistlite/infer", b'{"inputs": 1}', "application/json", 400, lambda a: True
    yield "GET", "/static/missing.js", None, None, 404, lambda a: True
    yield "GET", "/nowhere", None, None, 404, lambda a: True
    yield "GET", "/metrics", None, None, 404, lambda a: True   # served on the metrics port only


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    base = argv[0].rstrip("/")
    png, jpeg = open(argv[1], "rb").read(), open(argv[2], "rb").read()
    failures = n = 0
    for method, path, body, ctype, want, holds in checks(png, jpeg):
        n += 1
        status, got_type, raw = request(base, method, path, body, ctype)
        ok = status == want
        if ok and "json" in got_type:
            answer = json.loads(raw)
            ok = holds(answer) if status < 400 else "error" in json.dumps(answer).lower() or "title" in answer
        if not ok:
            failures += 1
            print(f"routes: {method} {path} ({ctype}): {status}, expected {want}: {raw[:300]!r}",
                  file=sys.stderr)
    print(f"routes: {n - failures} of {n} requests answered as expected", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
