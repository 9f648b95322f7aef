"""The plain-upload path (service/multipart_fast.py) gives falcon's answer for every body it takes, and
leaves the others to falcon: parsing.multipart_file's result or error is the same with and without it."""
from __future__ import annotations

import pytest

from service import multipart_fast, parsing
from service.errors import InputError

B = "b0undary-x'()+_,./:=?"
CT = f"multipart/form-data; boundary={B}"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) + b"\r\n-" + b"--" + B[:-1].encode()


def body(parts, *, prologue=b"", end=b"--\r\n", boundary=B):
    d = b"--" + boundary.encode()
    out = prologue
    for headers, data in parts:
        out += d + b"\r\n" + b"".join(h + b"\r\n" for h in headers) + b"\r\n" + data + b"\r\n"
    return out + d + end


FILE = b'Content-Disposition: form-data; name="file"; filename="digit.png"'
PNGT = b"Content-Type: image/png"
CD = b'Content-Disposition: form-data; name="file"; filename='
UPPER = FILE.replace(b"Content-Disposition", b"CONTENT-DISPOSITION")
CASES = {
    "curl": (body([([FILE, PNGT], PNG)]), CT),
    "no filename": (body([([b'Content-Disposition: form-data; name="file"'], PNG)]), CT),
    "type first": (body([([PNGT, FILE], PNG)]), CT),
    "upper-case names": (body([([UPPER, PNGT], PNG)]), CT),
    "no closing dashes": (body([([FILE], PNG)], end=b"\r\n"), CT),
    "cut after the data": (body([([FILE], PNG)], end=b"")[:-len(B) - 2], CT),
    "empty file": (body([([FILE], b"")]), CT),
    "other field first": (body([([b'Content-Disposition: form-data; name="x"'], b"1"), ([FILE], PNG)]), CT),
    "only other field": (body([([b'Content-Disposition: form-data; name="x"'], b"1")]), CT),
    "prologue": (body([([FILE], PNG)], prologue=b"hello\r\n"), CT),
    "two dispositions": (body([([FILE, b'Content-Disposition: form-data; name="y"'], PNG)]), CT),
    "transfer encoding": (body([([FILE, b"Content-Transfer-Encoding: base64"], PNG)]), CT),
    "quoted boundary": (body([([FILE], PNG)]), f'multipart/form-data; boundary="{B}"'),
    "other case type": (body([([FILE], PNG)]), f"Multipart/Form-Data; Boundary={B}"),
    "no boundary": (body([([FILE], PNG)]), "multipart/form-data"),
    "wrong boundary": (body([([FILE], PNG)]), "multipart/form-data; boundary=zzz"),
    "escaped filename": (body([([CD + b'"a\\"b;c"'], PNG)]), CT),
    "utf-8 filename": (body([([CD + b'"\xc3\xa9.png"'], PNG)]), CT),
    "bad utf-8 filename": (body([([CD + b'"\xff.png"'], PNG)]), CT),
    "no space after colon": (body([([b'Content-Disposition:form-data; name="file"'], PNG)]), CT),
    "header without colon": (body([([FILE, b"garbage"], PNG)]), CT),
    "no headers": (body([([], PNG)]), CT),
    "bare LF": (body([([FILE], PNG)]).replace(b"\r\n", b"\n"), CT),
    "long headers": (body([([FILE, b"Content-Type: " + b"a" * 2000], PNG)]), CT),
    "empty body": (b"", CT),
    "data holds the boundary": (body([([FILE], b"x\r\n--" + B.encode() + b"y")]), CT),
}


def _outcome(fn, data, ct):
    try:
        return ("ok", fn(data, ct))
    except InputError as e:
        return ("error", str(e))
    except Exception as e:  # noqa: BLE001 - whatever falcon raises, both paths must raise it alike
        return ("raised", type(e).__name__)


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_answer_as_falcon(name, monkeypatch):
    data, ct = CASES[name]
    with_fast = _outcome(parsing.multipart_file, data, ct)
    monkeypatch.setattr(parsing, "first_file", lambda *a: None)
    assert with_fast == _outcome(parsing.multipart_file, data, ct)


def test_the_plain_uploads_take_the_fast_path():
    for name in ("curl", "no filename", "type first", "upper-case names", "no closing dashes",
                 "data holds the boundary"):
        data, ct = CASES[name]
        assert multipart_fast.first_file(data, ct, "file") is not None, name
    assert multipart_fast.first_file(*CASES["curl"], "file") == PNG
