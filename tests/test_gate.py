"""The gate's numerics: McNemar (exact), ECE, and the gate's policy (release/gate.py) on controlled
predictions."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mnistlite.metrics import expected_calibration_error, mcnemar_exact, mcnemar_table
from mnistlite.release.gate import Policy, compare

N = 10_000


# ---- McNemar ---------------------------------------------------------------------------------
@pytest.mark.parametrize("b, c, expected", [
    (1, 5, Fraction(2 * (1 + 6), 2 ** 6)),             # n=6: P(X<=1) = 7/64, two-sided 14/64
    (0, 10, Fraction(2, 2 ** 10)),                     # all discordant pairs one way
    (2, 8, Fraction(2 * (1 + 10 + 45), 2 ** 10)),      # 112/1024
    (8, 2, Fraction(2 * (1 + 10 + 45), 2 ** 10)),      # symmetric
    (3, 3, Fraction(1)),                               # balanced: capped at 1
    (0, 0, Fraction(1)),                               # no discordant pairs
    (0, 1, Fraction(1)),                               # 2 * 1/2
])
def test_mcnemar_exact_matches_hand_worked_tables(b, c, expected):
    assert mcnemar_exact(b, c) == pytest.approx(float(expected), rel=1e-15)


def test_mcnemar_table_counts_discordant_pairs():
    a = np.array([1, 1, 0, 0, 1, 1], dtype=bool)   # model A right?
    m = np.array([1, 0, 1, 0, 0, 1], dtype=bool)   # model B right?
    assert mcnemar_table(a, m) == (2, 1)          # b: A only (idx 1, 4); c: B only (idx 2)
    with pytest.raises(ValueError, match="shapes differ"):
        mcnemar_table(a, m[:3])


def test_mcnemar_exact_is_stable_for_large_counts():
    assert mcnemar_exact(0, 1000) == pytest.approx(2.0 ** -999, rel=1e-12)   # no underflow to 0
    p = mcnemar_exact(4000, 4100)
    assert 0.2 < p < 0.3 and math.isfinite(p)
    with pytest.raises(ValueError, match="counts >= 0"):
        mcnemar_exact(-1, 3)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 80), st.integers(0, 80))
def test_mcnemar_equals_sum_of_outcomes_at_least_as_extreme(b, c):
    n = b + c
    extreme = sum(math.comb(n, i) for i in range(n + 1) if abs(2 * i - n) >= abs(2 * b - n))
    expected = min(Fraction(1), Fraction(extreme, 2 ** n)) if n else Fraction(1)
    p = mcnemar_exact(b, c)
    assert p == pytest.approx(float(expected), rel=1e-12)
    assert p == mcnemar_exact(c, b)
    if c >= b:
        assert mcnemar_exact(b, c + 1) <= p  # one more one-sided pair is never less evidence


# ---- ECE -------------------------------------------------------------------------------------
def test_ece_hand_worked():
    # four samples at confidence 0.9, half right: one bin, |0.5 - 0.9| = 0.4
    proba = np.array([[0.9, 0.1]] * 4)
    assert expected_calibration_error([0, 0, 1, 1], proba) == pytest.approx(0.4)
    # confident and right: perfectly calibrated
    assert expected_calibration_error([0, 1], np.eye(2)) == 0.0
    # two bins: {0.6 right} -> 0.4 gap, {0.95 wrong} -> 0.95 gap; mean = 0.675
    proba = np.array([[0.6, 0.4], [0.05, 0.95]])
    assert expected_calibration_error([0, 0], proba, n_bins=10) == pytest.approx(0.675)


def _ece_loop(y, proba, n_bins):
    conf, pred = proba.max(axis=1), proba.argmax(axis=1)
    total = 0.0
    for i in range(n_bins):
        lo, hi = i / n_bins, (i + 1) / n_bins
        m = (conf > lo) & (conf <= hi) if i else (conf <= hi)
        if m.any():
            total += m.sum() / len(y) * abs((pred[m] == y[m]).mean() - conf[m].mean())
    return total


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 200), st.integers(2, 10), st.integers(1, 20), st.integers(0, 2 ** 31))
def test_ece_matches_per_bin_definition(n, k, n_bins, seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=3.0, size=(n, k))
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = rng.integers(0, k, n)
    ece = expected_calibration_error(y, proba, n_bins)
    assert 0.0 <= ece <= 1.0
    assert ece == pytest.approx(_ece_loop(y, proba, n_bins), abs=1e-9)


# ---- the policy on controlled predictions -----------------------------------------------------
@pytest.fixture(scope="module")
def labels():
    return np.random.default_rng(0).integers(0, 10, N)


def _with_errors(y, idx):
    """Predictions equal to y except at idx, where they are (y + 1) mod 10."""
    p = y.copy()
    p[idx] = (y[idx] + 1) % 10
    return p


LOW_FLOOR = Policy(min_accuracy=0.5)


def _checks(v):
    return {c.name: c.passed for c in v.checks}


def test_better_passes_worse_fails(labels):
    good, bad = _with_errors(labels, np.arange(0, 300)), _with_errors(labels, np.arange(0, 900))
    v = compare(labels, good, bad, LOW_FLOOR)
    assert v.passed and v.status == "pass"
    assert v.mcnemar == {"b": 600, "c": 0, "p_value": v.mcnemar["p_value"]}
    v = compare(labels, bad, good, LOW_FLOOR)
    assert not v.passed and v.status == "fail"
    assert _checks(v) == {"min_accuracy": True, "non_inferiority": False, "class_recall": False,
                          "mcnemar": False}


def test_tie_passes_unless_improvement_is_required(labels):
    p = _with_errors(labels, np.arange(0, 300))
    v = compare(labels, p, p.copy(), LOW_FLOOR)
    assert v.passed and v.mcnemar["b"] == v.mcnemar["c"] == 0 and v.mcnemar["p_value"] == 1.0
    v = compare(labels, p, p.copy(), Policy(min_accuracy=0.5, require_improvement=True))
    assert not v.passed and _checks(v)["improvement"] is False


def test_non_inferiority_margin_is_inclusive(labels):
    prod = _with_errors(labels, np.arange(0, 100))                      # wrong on 0..99
    # candidate fixes 0..99 and breaks 120 others: drop exactly 0.2% (b=100, c=120: p~0.2)
    cand = _with_errors(labels, np.arange(100, 220))
    policy = Policy(min_accuracy=0.5, max_class_drop=0.05)  # isolate the overall margin
    v = compare(labels, cand, prod, policy)
    assert v.candidate["accuracy"] == pytest.approx(v.production["accuracy"] - 0.002)
    assert v.passed, v.reasons
    v = compare(labels, _with_errors(labels, np.arange(100, 221)), prod, policy)   # 0.21%
    assert _checks(v) == {"min_accuracy": True, "non_inferiority": False, "class_recall": True,
                          "mcnemar": True}


def test_better_overall_but_one_digit_loses_5pct_recall_fails(labels):
    threes, others = np.flatnonzero(labels == 3), np.flatnonzero(labels != 3)
    prod = _with_errors(labels, others[:600])                           # 94%, every 3 right
    prod_recall_3 = np.mean(prod[threes] == 3)
    cand = _with_errors(labels, threes[: int(0.06 * len(threes))])      # fixes 600, breaks 6% of threes
    v = compare(labels, cand, prod, LOW_FLOOR)
    assert v.candidate["accuracy"] > v.production["accuracy"]            # the premise: better overall
    assert prod_recall_3 - v.candidate["recall"][3] >= 0.05             # ... yet digit 3 loses >= 5%
    assert not v.passed and _checks(v) == {"min_accuracy": True, "non_inferiority": True,
                                          "class_recall": False, "mcnemar": True}
    assert any("digit 3" in r for r in v.reasons)


def test_significantly_worse_fails_even_within_a_wide_margin(labels):
    prod = labels.copy()
    cand = _with_errors(labels, np.arange(0, 5000, 50))                 # 100 new errors spread over classes
    v = compare(labels, cand, prod, Policy(min_accuracy=0.5, max_drop=0.05, max_class_drop=0.05))
    assert v.mcnemar["b"] == 0 and v.mcnemar["c"] == 100 and v.mcnemar["p_value"] < 1e-20
    assert _checks(v) == {"min_accuracy": True, "non_inferiority": True, "class_recall": True,
                          "mcnemar": False}


def test_first_deploy_applies_only_the_floor(labels):
    cand = _with_errors(labels, np.arange(0, 400))                      # 96%
    v = compare(labels, cand, None)
    assert v.first_deploy and v.production is None and v.mcnemar is None
    assert [c.name for c in v.checks] == ["min_accuracy"] and not v.passed   # 96% < default 97%
    assert any("first deploy" in r for r in v.reasons)
    v = compare(labels, cand, None, Policy(min_accuracy=0.96))
    assert v.passed and v.to_dict()["first_deploy"] is True


@pytest.mark.parametrize("kw", [{"alpha": 0.0}, {"alpha": 1.0}, {"min_accuracy": 1.5}, {"max_drop": -0.1}])
def test_policy_rejects_bad_thresholds(kw):
    with pytest.raises(ValueError, match="must be in"):
        Policy(**kw)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2 ** 31), st.floats(0.0, 0.5))
def test_identical_predictions_never_fail_a_relative_check(seed, error_rate):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, 500)
    p = np.where(rng.random(500) < error_rate, rng.integers(0, 10, 500), y)
    v = compare(y, p, p.copy(), Policy(min_accuracy=0.0))
    assert v.passed and v.mcnemar["p_value"] == 1.0


# ---- writer groups ---------------------------------------------------------------------------
GROUPS = {"census (first 5,000)": (0, 5000), "students (last 5,000)": (5000, 10000)}


def test_better_overall_but_one_writer_group_loses_fails(labels):
    """Candidate fixes 300 census errors and makes 150 new student errors: +1.5 pp overall, yet the
    students' accuracy drops 3 pp, beyond the 1 pp a group may lose."""
    prod = _with_errors(labels, np.arange(0, 600, 2))                  # 300 errors among the census half
    cand = _with_errors(labels, np.arange(5000, 5150))                  # census all right, 150 student errors
    policy = Policy(min_accuracy=0.5, max_class_drop=0.05)              # isolate the group rule
    v = compare(labels, cand, prod, policy, groups=GROUPS)
    assert v.candidate["accuracy"] > v.production["accuracy"]            # the premise: better overall
    assert v.production["groups"]["students (last 5,000)"] - v.candidate["groups"]["students (last 5,000)"] \
        == pytest.approx(0.03)
    assert not v.passed and _checks(v) == {"min_accuracy": True, "non_inferiority": True,
                                          "class_recall": True, "writer_groups": False, "mcnemar": True}
    assert any("students (last 5,000)" in r and "writer_groups" in r for r in v.reasons)
    assert compare(labels, cand, prod, policy).passed                    # without groups it would ship
    v = compare(labels, cand, prod, Policy(min_accuracy=0.5, max_class_drop=0.05, max_group_drop=0.03),
                groups=GROUPS)
    assert v.passed, v.reasons                                           # the limit is inclusive


def test_writer_groups_must_lie_inside_the_test_set(labels):
    with pytest.raises(ValueError, match="outside the 10000 test samples"):
        compare(labels, labels, labels, groups={"late": (5000, 12000)})


def test_honesty_checks_compare_calibration_only_when_both_models_have_it():
    from mnistlite.release.honesty import honesty_checks

    cand = {"calibrated": True, "ece": 0.02, "reject_for_0.5pct_error": 0.010}
    old = {"calibrated": False, "ece": 0.09, "reject_for_0.5pct_error": 0.010}
    ece, rej = honesty_checks(cand, old, Policy())
    assert ece.name == "calibration" and ece.passed
    assert "not compared: production not calibrated" in ece.detail
    assert rej.name == "reject_rate" and rej.passed
    ece, _ = honesty_checks(cand, {**old, "calibrated": True, "ece": 0.005}, Policy())
    assert not ece.passed and "ECE candidate 2.00%" in ece.detail
    ece, _ = honesty_checks(cand, {**old, "calibrated": True, "ece": 0.016}, Policy())
    assert ece.passed   # within the 0.5-point margin
    _, rej = honesty_checks({**cand, "reject_for_0.5pct_error": 0.02}, old, Policy())
    assert not rej.passed and "candidate 2.00% vs production 1.00%" in rej.detail
    _, rej = honesty_checks({**cand, "reject_for_0.5pct_error": 0.02}, old, Policy(max_reject_rise=0.01))
    assert rej.passed
