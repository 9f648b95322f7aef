"""service/worker.py's plain_settings: a worker's gunicorn settings read as plain attributes, same values."""
from __future__ import annotations

from gunicorn.config import Config

from service.worker import plain_settings


def hook(worker, req):
    return None


def test_every_setting_reads_the_same_and_without_getattr(monkeypatch):
    cfg = Config()
    cfg.set("pre_request", hook)
    cfg.set("limit_request_fields", 50)
    cfg.set("bind", ["127.0.0.1:8123"])
    before = {name: getattr(cfg, name) for name in cfg.settings}
    plain_settings(cfg)
    calls = []
    original = Config.__getattr__
    monkeypatch.setattr(Config, "__getattr__", lambda self, name: calls.append(name) or original(self, name))
    after = {name: getattr(cfg, name) for name in cfg.settings}
    assert after == before and after["pre_request"] is hook and after["limit_request_fields"] == 50
    assert calls == []   # gunicorn's lookup per read is what the worker saves on every request
    assert cfg.address == [("127.0.0.1", 8123)] and cfg.is_ssl is None   # the class's own names still work
