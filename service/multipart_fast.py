"""The usual upload's form field in a few bytes operations; anything less plain goes to falcon's parser.

``curl -F file=@digit.png``, browsers and ``requests`` send one form whose first part is the file:
``--B CRLF``, a Content-Disposition (and a Content-Type) header, a blank line, the bytes, ``CRLF --B``.
Falcon's ``MultipartFormHandler`` reads that part through a buffered stream, its header lines and a
parse of the Content-Disposition value, ~9 us a request (bench_service.py --breakdown, "multipart
parse"). ``first_file`` accepts only bodies whose answer falcon's parser is sure to give the same: the
plainest boundary parameter, no preamble, the field's part first with only those two headers, in the
forms falcon reads them, and a delimiter after its bytes. For every other body it returns None and the
caller asks falcon, so every error answer stays falcon's (tests/service/test_multipart_fast.py compares
the two on many bodies).
"""
from __future__ import annotations

import re

# "multipart/form-data; boundary=B", exactly so spelt, B 1..70 plain characters (no quotes or spaces)
_TYPE = re.compile(r"multipart/form-data; boundary=([0-9A-Za-z'()+_,./:=?-]{1,70})").fullmatch
# name="..." and an optional filename="..." of printable ASCII without quotes, backslashes or semicolons
_DISPOSITION = re.compile(rb'form-data; name="([0-9A-Za-z_.-]{1,64})"'
                          rb'(?:; filename="[ !#-:<-\[\]-~]{0,200}")?')
_HEADERS_MAX = 1024   # falcon's limit is 8 KiB; a longer block is left to it
_SAFE_TYPE = re.compile(rb"[0-9A-Za-z.+/-]{1,100}").fullmatch   # a part's Content-Type value


def first_file(body: bytes, content_type: str, field: str) -> bytes | None:
    """The bytes of ``field`` when it is the plain first part of ``body``, else None (falcon decides)."""
    m = _TYPE(content_type)
    if m is None:
        return None
    dash = b"--" + m.group(1).encode()
    head = dash + b"\r\n"
    if not body.startswith(head):
        return None
    start = len(head)
    end = body.find(b"\r\n\r\n", start, start + _HEADERS_MAX)
    if end < 0:
        return None
    name = None
    for line in body[start:end].split(b"\r\n"):
        key, sep, value = line.partition(b": ")
        if not sep:
            return None
        key = key.lower()
        if key == b"content-disposition" and name is None:
            d = _DISPOSITION.fullmatch(value)
            if d is None:
                return None
            name = d.group(1)
        elif key != b"content-type" or not _SAFE_TYPE(value):
            return None
    if name != field.encode():
        return None
    data_start = end + 4
    stop = body.find(b"\r\n" + dash, data_start)
    if stop <= data_start:   # no closing delimiter, or an empty file: falcon's answer
        return None
    return body[data_start:stop]
