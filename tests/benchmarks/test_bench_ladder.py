"""Benchmark helpers: each throughput-ladder rung answers like the service and runs its stages; bad
arguments are refused.

A rung that skipped its stage, or answered something else than the service, would make the ladder's
per-stage costs in docs/performance.md wrong; these checks run in-process with falcon.testing.
"""
from __future__ import annotations

import sys

import ladder_app
import loadgen
import pytest
from falcon import testing

import mnistlite as ml
from service.app import create_app
from service.predictor import Predictor


@pytest.fixture(scope="module")
def rungs(small_model_path):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MNISTLITE_MODEL", str(small_model_path))
        mp.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
        yield {r: testing.TestClient(ladder_app._build(r)) for r in ladder_app.RUNGS if r != "full"}


def post(client, data: bytes, field: str = "file"):
    body = loadgen.multipart_body(data, field)
    return client.simulate_post("/predict", body=body, headers={"Content-Type": loadgen.MULTIPART_TYPE})


def test_every_rung_answers_what_the_service_answers(rungs, small_model_path):
    service = testing.TestClient(create_app(Predictor(ml.load(small_model_path))))
    expected = post(service, loadgen.digit_png())
    assert expected.json["predicted_class"] == 6
    for rung, client in rungs.items():
        r = post(client, loadgen.digit_png())
        assert r.status_code == 200, rung
        assert r.json == expected.json, rung
        assert r.content == expected.content, rung  # byte for byte


def test_rungs_from_multipart_on_parse_the_form_and_from_decode_on_decode(rungs):
    for rung, client in rungs.items():
        level = ladder_app.RUNGS.index(rung)
        missing_field = post(client, loadgen.digit_png(), "other").status_code
        not_an_image = post(client, b"not an image").status_code
        assert missing_field == (400 if level >= ladder_app.RUNGS.index("multipart") else 200), rung
        assert not_an_image == (400 if level >= ladder_app.RUNGS.index("decode") else 200), rung


def test_only_the_middleware_rungs_set_a_request_id(rungs):
    for rung, client in rungs.items():
        has_id = "X-Request-ID" in post(client, loadgen.digit_png()).headers
        assert has_id == (ladder_app.RUNGS.index(rung) >= ladder_app.RUNGS.index("middleware")), rung


def test_unknown_rung_is_refused(monkeypatch):
    monkeypatch.setenv("LADDER_RUNG", "warp-drive")
    monkeypatch.delitem(ladder_app.__dict__, "app", raising=False)
    with pytest.raises(SystemExit, match="LADDER_RUNG must be one of"):
        ladder_app.app  # noqa: B018


@pytest.mark.parametrize("argv", [["--rungs", "gunicorn,warp"], ["--duration", "60"], ["--rounds", "0"]])
def test_bench_ladder_refuses_bad_arguments_before_starting_anything(argv, capsys):
    import bench_ladder

    assert bench_ladder.main(argv) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_bench_old_service_refuses_bad_arguments(capsys):
    import bench_old_service

    assert bench_old_service.main(["--old-python", sys.executable, "--duration", "60"]) == 2
    assert "--duration" in capsys.readouterr().err
