"""service/fast_head.py against gunicorn itself: for ordinary, odd, malformed and generated request heads,
under several settings, FastRequest gives gunicorn Request's attributes and body framing, or raises the
same exception class; the plain path is really taken for ordinary heads; and the per-worker caches
(peer trust, wsgi.errors) answer as gunicorn's per-request lookups do."""
from __future__ import annotations

import io
import logging

import pytest
from gunicorn.config import Config
from gunicorn.http import parser as http_parser
from gunicorn.http import wsgi
from gunicorn.http.message import Request
from gunicorn.http.unreader import IterUnreader
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service import fast_head
from service.fast_head import FastRequest
from service.worker import plain_settings

PEER = ("127.0.0.1", 40000)
BODY = b"--b\r\nx\r\n--b--\r\n"
ORDINARY = [
    b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Type: multipart/form-data; boundary=b\r\n"
    b"Content-Length: 15\r\n\r\n" + BODY,
    b"GET / HTTP/1.1\r\n\r\n",
    b"GET /healthz?x=1&y=%20#frag HTTP/1.1\r\nHost: a\r\nUser-Agent: curl/8.0\r\nAccept: */*\r\n\r\n",
    b"POST /predict HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nabcdGET / HTTP/1.1\r\n\r\n",
    b"PUT //double/slash HTTP/1.1\r\nX-Empty:\r\nX-Tabs:\t v \t\r\nConnection: keep-alive\r\n\r\n",
    b"DELETE /a HTTP/1.1\r\nX-Forwarded-Proto: https\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n",
    b"OPTIONS /x HTTP/1.1\r\nhost: lower\r\nContent-Length: 0\r\n\r\n",
]
ODD_AND_MALFORMED = [
    b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",                     # one empty line first
    b"GET / HTTP/1.0\r\nHost: a\r\n\r\n",
    b"GET http://a/b HTTP/1.1\r\nHost: a\r\n\r\n",                # absolute-form
    b"OPTIONS * HTTP/1.1\r\n\r\n",
    b"CONNECT a:443 HTTP/1.1\r\n\r\n",
    b"get / HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",              # duplicate singleton
    b"GET / HTTP/1.1\r\nContent-Type: a\r\ncontent-type: b\r\n\r\n",
    b"POST / HTTP/1.1\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd",
    b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
    b"POST / HTTP/1.1\r\nContent-Length: 1_0\r\n\r\n",
    b"POST / HTTP/1.1\r\nContent-Length: +4\r\n\r\nabcd",
    b"POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
    b"POST / HTTP/1.1\r\nTransfer-Encoding: x\r\n\r\n",
    b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx",
    b"POST / HTTP/1.1\r\nExpect: 100-CONTINUE\r\n\r\n",
    b"POST / HTTP/1.1\r\nExpect: other\r\n\r\n",
    b"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n",                       # obs-fold
    b"GET / HTTP/1.1\r\nX_Y: a\r\n\r\n",                          # underscore
    b"GET / HTTP/1.1\r\nX Y: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nX : a\r\n\r\n",
    b"GET / HTTP/1.1\r\n: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nNoColon\r\n\r\n",
    b"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n",
    b"GET / HTTP/1.1\r\nX: a\x7fb\r\n\r\n",
    b"GET / HTTP/1.1\r\nX: caf\xe9\r\n\r\n",                       # obs-text
    b"GET / HTTP/1.1\nHost: a\r\n\r\n",                            # bare LF
    b"GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",                    # bare CR
    b"GET /a\x80 HTTP/1.1\r\n\r\n",
    b"GET /a b HTTP/1.1\r\n\r\n",
    b"GET  / HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1 \r\n\r\n",
    b"GET / HTTP/2.0\r\n\r\n",
    b"GET / HTTP/1.10\r\n\r\n",
    b"GET / http/1.1\r\n\r\n",
    b"GET /\r\n\r\n",
    b"GET\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\n",                              # head never ends
    b"",
    b"GET / HTTP/1.1\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Proto: http\r\n\r\n",
    b"GET / HTTP/1.1\r\nX-Forwarded-Ssl: on\r\n\r\n",
    b"GET / HTTP/1.1\r\n" + b"X-A: " + b"v" * 9000 + b"\r\n\r\n",
    b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\n" + b"X-A: 1\r\n" * 120 + b"\r\n",
]
SETTINGS = {
    "service": {"forwarded_allow_ips": ""},
    "gunicorn defaults": {},
    "trust all": {"forwarded_allow_ips": "*"},
    "small limits": {"limit_request_line": 20, "limit_request_fields": 3, "limit_request_field_size": 40},
    "unlimited": {"limit_request_line": 0, "limit_request_fields": 0, "limit_request_field_size": 0},
    "header_map drop": {"header_map": "drop", "forwarded_allow_ips": "*", "forwarder_headers": "X_Y"},
    "obs-fold and casefold": {"permit_obsolete_folding": True, "casefold_http_method": True,
                              "strip_header_spaces": True},
}


def config(overrides: dict) -> Config:
    cfg = Config()
    for name, value in overrides.items():
        cfg.set(name, value)
    plain_settings(cfg)
    return cfg


CONFIGS = {name: config(o) for name, o in SETTINGS.items()}


def outcome(cls, cfg, chunks, peer=PEER):
    """What parsing ``chunks`` gives: the request's attributes and its body as read, or the error's class."""
    try:
        req = cls(cfg, IterUnreader(list(chunks)), peer, 1)
        body = req.body.read()
    except Exception as e:  # noqa: BLE001 - the exception's class is the outcome compared
        return ("raised", type(e))
    return (req.method, req.uri, req.path, req.query, req.fragment, req.version, req.headers, req.scheme,
            type(req.body.reader), body, req._expected_100_continue, req.should_close(), req.must_close)


def assert_same(raw: bytes, cfg: Config, split: int | None = None, peer=PEER) -> None:
    chunks = [raw] if split is None else [raw[:split], raw[split:]]
    chunks = [c for c in chunks if c]
    assert outcome(FastRequest, cfg, chunks, peer) == outcome(Request, cfg, chunks, peer)


@pytest.mark.parametrize("cfg_name", SETTINGS)
@pytest.mark.parametrize("raw", ORDINARY + ODD_AND_MALFORMED)
def test_same_as_gunicorn(raw, cfg_name):
    cfg = CONFIGS[cfg_name]
    assert_same(raw, cfg)
    assert_same(raw, cfg, peer=("10.1.2.3", 1))
    assert_same(raw, cfg, peer="/run/sock")
    for split in (1, len(raw) // 2, len(raw) - 1):  # the head not whole in the first buffer
        assert_same(raw, cfg, split)


@pytest.mark.parametrize("raw", ORDINARY)
def test_ordinary_heads_take_the_plain_path(raw, monkeypatch):
    taken = []
    plain = FastRequest._parse_plain
    monkeypatch.setattr(FastRequest, "_parse_plain",
                        lambda self, buf: taken.append(plain(self, buf)) or taken[-1])
    FastRequest(CONFIGS["service"], IterUnreader([raw]), PEER, 1)
    assert taken and taken[0] is not None


LEFT_TO_GUNICORN = [
    b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx",
    b"GET / HTTP/1.1\r\nX-A: expect\r\n\r\n",
    b"GET / HTTP/1.1\r\nX_Y: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nX: caf\xe9\r\n\r\n",
    b"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\n",
    b"\r\nGET / HTTP/1.1\r\n\r\n",
    b"GET http://a/ HTTP/1.1\r\n\r\n",
    b"get / HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a",
]


@pytest.mark.parametrize("raw", LEFT_TO_GUNICORN)
def test_other_heads_go_to_gunicorns_parser(raw):
    req = FastRequest.__new__(FastRequest)
    req.cfg, req.limit_request_line = CONFIGS["service"], 8190
    req.limit_request_fields, req.limit_request_field_size = 100, 8190
    assert req._parse_plain(bytearray(raw)) is None


_TOKEN = st.sampled_from(["Host", "Content-Length", "Content-Type", "X-A", "x-b", "Connection", "Expect",
                          "Transfer-Encoding", "X_U", "X-Forwarded-Proto", "X-Forwarded-Ssl", "Bad Name",
                          "", "Te", "a:b"])
_VALUE = st.one_of(st.sampled_from(["", "0", "4", "-1", "close", "keep-alive", "chunked", "100-continue",
                                    "https", "on", " padded\t", "a, b"]),
                   st.binary(max_size=12).map(lambda b: b.decode("latin-1")))
_LINE = st.tuples(_TOKEN, st.sampled_from([":", ": ", ":\t", " :", ""]), _VALUE).map("".join)
_HEAD = st.builds(
    lambda method, target, version, lines, eol, body: (
        f"{method} {target} {version}{eol}" + "".join(f"{line}{eol}" for line in lines) + eol
    ).encode("latin-1") + body,
    st.sampled_from(["GET", "POST", "PUT", "HEAD", "get", "PATCH", "CONNECT", "OPTIONS", "G@T", "X" * 21]),
    st.one_of(st.sampled_from(["/", "/predict", "//x", "*", "http://a/", "a:1", "/?q#f", ""]),
              st.text(alphabet=st.characters(max_codepoint=255), max_size=8).map(lambda t: "/" + t)),
    st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/1.1 ", "HTTP/2.0", "HTTP/1.1\r"]),
    st.lists(_LINE, max_size=5),
    st.sampled_from(["\r\n", "\r\n", "\r\n", "\n"]),
    st.sampled_from([b"", b"abcd", b"0\r\n\r\n", b"4\r\nabcd\r\n0\r\n\r\n"]),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=_HEAD, cfg_name=st.sampled_from(sorted(SETTINGS)), split=st.none() | st.integers(1, 60))
def test_generated_heads_same_as_gunicorn(raw, cfg_name, split):
    assert_same(raw, CONFIGS[cfg_name], split)


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=80).map(lambda b: b"GET / HTTP/1.1\r\n" + b + b"\r\n\r\n"))
def test_arbitrary_header_bytes_same_as_gunicorn(raw):
    assert_same(raw, CONFIGS["service"])


def test_peer_trust_cached_per_address_as_gunicorn_decides():
    cfg = config({"forwarded_allow_ips": "127.0.0.1,10.0.0.0/8"})
    for _ in range(2):  # the second time from the cache
        for ip, trusted in [("127.0.0.1", True), ("10.9.9.9", True), ("192.168.0.1", False), ("::1", False),
                            ("not-an-ip", False)]:
            req = FastRequest(cfg, IterUnreader([b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"]), (ip, 1), 1)
            assert req._peer_is_trusted_proxy() is trusted
            assert Request._peer_is_trusted_proxy(req) is trusted
    assert cfg._mnistlite_trusted_peers == {"127.0.0.1": True, "10.9.9.9": True, "192.168.0.1": False,
                                            "::1": False, "not-an-ip": False}


def test_peer_trust_cache_stays_bounded(monkeypatch):
    cfg = config({})
    monkeypatch.setattr(fast_head, "_TRUST_CACHE_MAX", 3)
    for i in range(10):
        FastRequest(cfg, IterUnreader([b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"]), (f"10.0.0.{i}", 1), 1)
    assert len(cfg._mnistlite_trusted_peers) <= 3


def test_worker_errors_follow_reopened_files_and_survive_close(monkeypatch, tmp_path):
    cfg = config({"errorlog": str(tmp_path / "error.log")})
    log = logging.getLogger("gunicorn.error")
    handler = logging.FileHandler(tmp_path / "error.log")
    monkeypatch.setattr(log, "handlers", [handler])
    monkeypatch.setattr(http_parser.RequestParser, "mesg_class", http_parser.RequestParser.mesg_class)
    monkeypatch.setattr(wsgi, "WSGIErrorsWrapper", wsgi.WSGIErrorsWrapper)
    fast_head.install(cfg)
    assert http_parser.RequestParser.mesg_class is FastRequest
    errors = wsgi.base_environ(cfg)["wsgi.errors"]
    assert errors is wsgi.base_environ(cfg)["wsgi.errors"]
    assert isinstance(wsgi.base_environ(config({}))["wsgi.errors"], fast_head._GunicornErrors)
    errors.write("one\n")
    handler.close()  # what gunicorn's reopen_files does on USR1
    (tmp_path / "error.log").rename(tmp_path / "error.log.1")
    handler.stream = handler._open()
    errors.close()  # one request closing it leaves it open for the next
    errors.write("two\n")
    handler.close()
    assert (tmp_path / "error.log.1").read_text() == "one\n"
    assert (tmp_path / "error.log").read_text() == "two\n"


def test_worker_errors_write_to_stderr_for_dash(monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr("sys.stderr", out)
    monkeypatch.setattr(logging.getLogger("gunicorn.error"), "handlers", [logging.StreamHandler(out)])
    fast_head.WorkerErrors(config({"errorlog": "-"})).write("x\n")
    assert out.getvalue() == "x\n"
