"""Predictor.answers turns a Judgement into answer dicts: the exact values, keys and types the JSON and the
metrics are made of, whatever mix of answers, abstentions and warnings a batch holds."""
from __future__ import annotations

import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mnistlite.nn.calibration import REASONS
from mnistlite.quality.honest import Judgement
from service.predictor import Predictor


class _Model:
    layer_sizes = (784, 10)
    sha256 = "cd" * 32


def _expected(version: str, j: Judgement) -> list:
    """The answers spelled out one numpy element at a time."""
    out = []
    for i in range(len(j.proba)):
        row = [float(np.round(np.float64(v), 6)) for v in j.proba[i]]
        c = int(np.argmax(j.proba[i]))
        a = {"predicted_class": c, "confidence": row[c], "probabilities": row, "model_version": version,
             "abstain": bool(j.verdict[i])}
        if j.verdict[i]:
            a["abstain_reason"] = REASONS.get(int(j.verdict[i]))
            a["reason"] = j.reasons[i]
        if j.warnings[i]:
            a["warnings"] = [j.warnings[i]]
        out.append(a)
    return out


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 12))
def test_answers_hold_the_rounded_probabilities_class_and_verdict(seed, n):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(10, rng.uniform(0.05, 2.0)), n).astype(np.float32)
    verdict = rng.integers(0, 3, n).astype(np.int8)
    reasons = [None if v == 0 else f"reason {i}" for i, v in enumerate(verdict)]
    warnings = [f"warning {i}" if rng.random() < 0.3 else None for i in range(n)]
    j = Judgement(p, verdict, reasons, warnings)
    predictor = Predictor(_Model())
    got = predictor.answers(j)
    want = _expected(predictor.version, j)
    assert json.dumps(got) == json.dumps(want)
    assert all(type(a["abstain"]) is bool and type(a["predicted_class"]) is int for a in got)
