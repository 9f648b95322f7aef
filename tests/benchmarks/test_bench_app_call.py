"""bench_app_call times the real app call: it answers, prints the answer's hash, and names each stage
it wraps.

Its per-stage figures in docs/performance.md come from ``--pieces``: a stage renamed in service/ would
otherwise drop out of the table silently, or the child would time a call that failed.
"""
from __future__ import annotations

import re
from pathlib import Path

import bench_app_call

ROOT = Path(__file__).resolve().parents[2]


def test_times_a_whole_call_and_the_stages_inside_it(small_model_path, capsys):
    args = ["--model", str(small_model_path), "--rounds", "1", "--pieces", str(ROOT)]
    assert bench_app_call.main(args) == 0
    out = capsys.readouterr().out
    m = re.search(r"round 1 .* whole app call +([\d.]+) us  body ([0-9a-f]{12})", out)
    assert m, out
    assert 0 < float(m.group(1)) < 1e6
    for stage in ("judge", "preprocess_image", "image_bytes", "media_json", "process_request",
                  "process_response", "on_post"):
        assert re.search(rf"\.{stage} +[\d.]+ us", out), (stage, out)

