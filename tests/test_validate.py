"""The data gate: detector targets on real MNIST + generated noise, batch checks, policy, quarantine."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mnistlite.data.images import encode_png, write_folder
from mnistlite.quality import noise
from mnistlite.quality.detector import RULES, corruption_reasons, is_corrupt
from mnistlite.quality.validate import QUARANTINE, class_balance, duplicate_of, validate_folder, write_report

N_NOISE = 3000   # per kind: 99.9% detection means at most 3 misses


def test_false_positives_on_all_70k_mnist_at_most_0_1_percent(mnist_uint8):
    (x_train, _), (x_test, _) = mnist_uint8
    flagged_train = sum(r is not None for r in corruption_reasons(x_train))
    flagged_test = sum(r is not None for r in corruption_reasons(x_test))
    assert flagged_train + flagged_test <= 70, (flagged_train, flagged_test)


@pytest.mark.parametrize("kind", noise.ALL_KINDS)
def test_detects_each_noise_kind_at_least_99_9_percent(kind, mnist_uint8):
    _, (x_test, _) = mnist_uint8        # noisy digits are spoiled *test* digits: thresholds never saw them
    x = noise.make(kind, N_NOISE, seed=123, digits=x_test)
    missed = sum(r is None for r in corruption_reasons(x))
    assert missed <= N_NOISE // 1000, f"{kind}: {missed} of {N_NOISE} noise images passed as digits"


def test_reasons_are_short_and_say_what_was_seen():
    r = is_corrupt(noise.uniform(1, seed=0)[0])
    assert r.startswith("noise:") and "%" in r and "digits:" in r and len(r) < 80
    assert is_corrupt(np.zeros((28, 28), np.uint8)).startswith("blank:")
    assert is_corrupt(np.full((28, 28), 255, np.uint8)) is not None


def test_a_real_digit_passes_and_single_image_agrees_with_batch(mnist_uint8):
    _, (x_test, _) = mnist_uint8
    assert is_corrupt(x_test[0]) is None
    batch = np.concatenate([x_test[:20], noise.mixed(20, seed=1, digits=x_test[:5])])
    assert [is_corrupt(im) for im in batch] == corruption_reasons(batch)


@settings(max_examples=40, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 6), st.just(28), st.just(28))))
def test_batch_result_equals_per_image_result(images):
    # Vectorized statistics must not leak between images of a batch.
    assert corruption_reasons(images) == [is_corrupt(im) for im in images]


def test_detector_rejects_wrong_shapes_and_dtypes():
    with pytest.raises(ValueError, match="uint8"):
        corruption_reasons(np.zeros((2, 28, 28), np.float32))
    with pytest.raises(ValueError, match="28, 28"):
        is_corrupt(np.zeros((27, 28), np.uint8))


def test_every_rule_can_fire():
    # Each rule must be the reason for some kind of corruption, or it is dead weight.
    x = np.concatenate([noise.make(k, 300, seed=4, digits=noise.uniform(3, seed=0)) for k in noise.ALL_KINDS])
    x = np.concatenate([x, np.zeros((1, 28, 28), np.uint8)])
    seen = {r.split(":")[1].strip()[:12] for r in corruption_reasons(x) if r}
    assert len(seen) >= 5, seen
    assert len(RULES) >= 6


def test_preprocessed_uploads_of_digits_pass_and_of_noise_are_flagged(mnist_uint8):
    from mnistlite.images.preprocess import preprocess_image

    _, (x_test, _) = mnist_uint8
    digits = np.stack([preprocess_image(encode_png(im)) for im in x_test[:1500]])
    assert sum(r is not None for r in corruption_reasons(digits)) <= 1
    for kind in noise.ALL_KINDS:
        raw = noise.make(kind, 300, seed=9, digits=x_test)
        up = np.stack([preprocess_image(encode_png(im)) for im in raw])
        missed = sum(r is None for r in corruption_reasons(up))
        assert missed <= 3, f"preprocessed {kind}: {missed} of 300 passed"


def test_noise_generators_are_seeded_and_valid():
    for kind in noise.ALL_KINDS:
        a = noise.make(kind, 5, seed=7, digits=noise.uniform(2, seed=1))
        b = noise.make(kind, 5, seed=7, digits=noise.uniform(2, seed=1))
        assert a.dtype == np.uint8 and a.shape == (5, 28, 28) and np.array_equal(a, b)
    with pytest.raises(ValueError, match="choose one of"):
        noise.make("pink", 1)
    with pytest.raises(ValueError, match="digits"):
        noise.make("noisy_digit", 1)


def test_duplicate_of_points_to_first_copy():
    a = noise.uniform(4, seed=0)
    x = np.stack([a[0], a[1], a[0], a[2], a[1], a[0]])
    assert duplicate_of(x).tolist() == [-1, -1, 0, -1, 1, 0]
    assert duplicate_of(np.zeros((0, 28, 28), np.uint8)).tolist() == []


def test_class_balance_distance():
    b = class_balance(np.repeat(np.arange(10), 10))
    assert b["class_counts"] == [10] * 10 and b["distance"] < 0.02
    assert class_balance(np.zeros(50, int))["distance"] > 0.85
    with pytest.raises(ValueError, match="10 non-negative"):
        class_balance([1], reference=[1, 2])


def _week(folder, mnist_uint8, n=300, bad=0, seed=0):
    (x, y), _ = mnist_uint8
    write_folder(folder, x[:n], y[:n])
    if bad:
        write_folder(folder, noise.mixed(bad, seed=seed, digits=x[:10]), y[:bad], start_id=50000)
    return folder


def test_validate_folder_passes_clean_week_and_moves_nothing(tmp_path, mnist_uint8):
    week = _week(tmp_path / "week-1", mnist_uint8)
    rep = validate_folder(week)
    assert rep.passed and rep.count == 300 and rep.good == 300 and rep.bad == []
    assert rep.images.shape == (300, 28, 28) and rep.labels.shape == (300,)
    assert not (week / QUARANTINE).exists()


def test_validate_folder_fails_noise_week_quarantines_and_keeps_files(tmp_path, mnist_uint8):
    week = _week(tmp_path / "week-2", mnist_uint8, n=100, bad=20)
    (week / "notes.txt").write_text("hello")          # not a png
    (week / "00001_label_x.png").write_bytes(b"x")    # bad name
    (week / "00002_label_3.png").write_bytes(b"not a png at all")
    rep = validate_folder(week, max_bad_fraction=0.05)
    assert not rep.passed and rep.good == 100 and len(rep.bad) == 23
    d = rep.to_dict()
    json.dumps(d)
    assert all(set(b) == {"file", "reason"} for b in d["bad"])
    reasons = {b["file"]: b["reason"] for b in d["bad"]}
    assert reasons["notes.txt"] == "not a .png file"
    assert reasons["50000_label_5.png"].startswith(("noise", "blank"))
    q = week / QUARANTINE
    assert len([p for p in q.iterdir() if p.name != "reasons.json"]) == 23   # moved, never deleted
    assert not (week / "50000_label_5.png").exists() and (q / "50000_label_5.png").is_file()
    assert "FAIL" in rep.summary() and "quarantine" in rep.summary()
    # A rerun sees the quarantined files and reaches the same verdict (not a clean 100/100 pass).
    again = validate_folder(week, max_bad_fraction=0.05)
    assert not again.passed and again.count == 123 and len(again.bad) == 23
    assert any(b["reason"].startswith("noise") for b in again.bad)


def test_duplicates_are_bad_and_label_conflicts_named(tmp_path, mnist_uint8):
    (x, y), _ = mnist_uint8
    week = tmp_path / "w"
    write_folder(week, x[:50], y[:50])
    write_folder(week, x[:2], (y[:2] + 1) % 10, start_id=900)
    write_folder(week, x[2:3], y[2:3], start_id=902)        # same pixels and label as 00002
    rep = validate_folder(week, max_bad_fraction=0.5, quarantine=False)
    by_file = {b["file"]: b["reason"] for b in rep.bad}
    assert by_file["00900_label_6.png"].startswith("duplicate of 00000_label_5.png with a different label")
    assert by_file["00902_label_4.png"] == "duplicate of 00002_label_4.png"
    assert rep.good == 50 and len(rep.bad) == 3 and (week / "00900_label_6.png").exists()


def test_policy_threshold_and_class_distance(tmp_path, mnist_uint8):
    week = _week(tmp_path / "w", mnist_uint8, n=200, bad=2)       # 2 / 202 = 0.99%
    assert validate_folder(week, max_bad_fraction=0.01, quarantine=False).passed
    assert not validate_folder(week, max_bad_fraction=0.005, quarantine=False).passed
    skew = validate_folder(week, max_class_distance=0.0001, quarantine=False)
    assert not skew.passed and "class balance" in skew.failures[0]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert not validate_folder(empty).passed
    with pytest.raises(ValueError, match="max_bad_fraction"):
        validate_folder(week, max_bad_fraction=1.5)


def test_write_report_is_json_with_bad_list(tmp_path, mnist_uint8):
    week = _week(tmp_path / "w", mnist_uint8, n=30, bad=3)
    path = write_report(validate_folder(week), tmp_path / "r.json")
    d = json.loads(path.read_text())
    assert d["count"] == 33 and len(d["bad"]) == 3 and d["passed"] is False
    assert len(d["class_counts"]) == 10 and d["policy"]["max_bad_fraction"] == 0.01


def test_one_image_is_judged_as_in_a_batch(mnist_uint8):
    # The service checks one upload at a time, the data gate whole weeks: the same image must get
    # the same reason either way, on real digits and on every noise kind.
    (x_train, _), (x_test, _) = mnist_uint8
    x = np.concatenate([x_train[:2000], x_test[:1000], np.zeros((1, 28, 28), np.uint8),
                        np.full((1, 28, 28), 255, np.uint8)]
                       + [noise.make(k, 300, seed=7, digits=x_test) for k in noise.ALL_KINDS])
    reasons = corruption_reasons(x)
    assert sum(r is None for r in reasons) > 2900 and sum(r is not None for r in reasons) > 1700
    assert [is_corrupt(im) for im in x] == reasons
    # Small batches check rules on Python scalars; large ones rule by rule over the batch: same reasons.
    for lo in range(0, len(x), 29):
        assert corruption_reasons(x[lo:lo + 29]) == reasons[lo:lo + 29]


def test_single_image_path_gives_the_batch_statistics_exactly(mnist_uint8):
    # One image (a service upload) takes a shorter path: every statistic must be the value the batch
    # path gives for that image alone, to the last bit, so no reason or threshold can move.
    from mnistlite.quality.detector import _one, image_stats

    _, (x_test, _) = mnist_uint8
    x = np.concatenate([x_test[:300], np.zeros((1, 28, 28), np.uint8), np.full((1, 28, 28), 255, np.uint8)]
                       + [noise.make(k, 40, seed=3, digits=x_test) for k in noise.ALL_KINDS])
    for im in x:
        batch = {k: v[0].item() for k, v in image_stats(im[None]).items()}
        assert _one(im) == batch
