"""service/fast_head.py's per-worker caches answer as gunicorn's per-request lookups do: the peer's trust
decision per address, and one wsgi.errors that follows reopened log files."""
from __future__ import annotations

import io
import logging

from gunicorn.config import Config
from gunicorn.http import parser as http_parser
from gunicorn.http import wsgi
from gunicorn.http.message import Request
from gunicorn.http.unreader import IterUnreader

from service import fast_head
from service.fast_head import FastRequest
from service.worker import plain_settings


def config(overrides: dict) -> Config:
    cfg = Config()
    for name, value in overrides.items():
        cfg.set(name, value)
    plain_settings(cfg)
    return cfg


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
