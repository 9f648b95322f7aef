"""Model files: exact round trips, float16, size, and clear errors for every kind of bad file."""
import io
import json
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mnistlite as ml


@settings(max_examples=20, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=0, max_size=3), st.sampled_from(["relu", "tanh"]),
       st.integers(0, 2**31 - 1))
def test_round_trip_gives_identical_predictions(tmp_path_factory, hidden, activation, seed):
    model = ml.MLP([784, *hidden, 10], activation=activation, seed=seed,
                   config=ml.TrainConfig(hidden=tuple(hidden), activation=activation, seed=seed))
    path = tmp_path_factory.mktemp("m") / "model.npz"
    ml.save(model, path, metadata={"note": "round trip"})
    loaded = ml.load(path)
    x = np.random.default_rng(seed).random((64, 784), dtype=np.float32)
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))
    assert loaded.flat_params.tobytes() == model.flat_params.tobytes()
    assert loaded.config == model.config
    assert loaded.metadata["user"] == {"note": "round trip"}
    assert loaded.metadata["layer_sizes"] == [784, *hidden, 10]
    assert len(loaded.sha256) == 64


def test_metadata_and_size_of_the_reference_shape(small_model, tmp_path):
    model = ml.MLP([784, 128, 10], seed=0, config=ml.REFERENCE)
    model.metadata["metrics"] = {"test_accuracy": 0.98}
    path = ml.save(model, tmp_path / "m.npz")
    assert path.stat().st_size <= 420 * 1024
    meta = ml.load(path).metadata
    for key in ("format_version", "layer_sizes", "activation", "preprocessing_version", "mnistlite_version",
                "config", "created", "metrics"):
        assert key in meta
    assert meta["config"]["batch_size"] == 32 and meta["metrics"]["test_accuracy"] == 0.98
    half = ml.save(model, tmp_path / "h.npz", float16=True)
    assert half.stat().st_size < 0.6 * path.stat().st_size
    x = np.random.default_rng(0).random((100, 784), dtype=np.float32)
    np.testing.assert_allclose(ml.load(half).predict_proba(x), model.predict_proba(x), atol=2e-3)


def _npz_bytes(**arrays):
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _meta(**changes):
    meta = {"format": "mnistlite.mlp", "format_version": 1, "layer_sizes": [4, 3], "activation": "relu"}
    meta.update(changes)
    return np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)


GOOD = {"W0": np.zeros((4, 3), np.float32), "b0": np.zeros(3, np.float32)}


@pytest.mark.parametrize("blob, message", [
    (b"", "not a readable .npz"),
    (b"hello, this is text", "not a readable .npz"),
    (_npz_bytes(x=np.arange(3)), "no mnistlite metadata"),
    (_npz_bytes(**GOOD, __meta__=np.frombuffer(b"{not json", np.uint8)), "not valid JSON"),
    (_npz_bytes(**GOOD, __meta__=_meta(format="other")), "foreign"),
    (_npz_bytes(**GOOD, __meta__=_meta(format_version=99)), "format version 99 is not supported"),
    (_npz_bytes(W0=np.zeros((4, 2), np.float32), b0=GOOD["b0"], __meta__=_meta()), "W0 has shape (4, 2)"),
    (_npz_bytes(W0=GOOD["W0"].astype(np.float64), b0=GOOD["b0"], __meta__=_meta()), "dtype float64"),
    (_npz_bytes(W0=np.full((4, 3), np.nan, np.float32), b0=GOOD["b0"], __meta__=_meta()), "NaN"),
    (_npz_bytes(W0=GOOD["W0"], __meta__=_meta()), "do not match layer sizes"),
    (_npz_bytes(**GOOD, __meta__=_meta(layer_sizes="big")), "bad layer_sizes"),
    (_npz_bytes(**GOOD, extra=np.zeros(1), __meta__=_meta()), "do not match layer sizes"),
    (_npz_bytes(W0=np.array([object()] * 12).reshape(4, 3), b0=GOOD["b0"], __meta__=_meta()), "npz"),
])
def test_bad_files_raise_one_clear_error(tmp_path, blob, message):
    path = tmp_path / "bad.npz"
    path.write_bytes(blob)
    with pytest.raises(ml.ModelFileError) as e:
        ml.load(path)
    text = str(e.value)
    assert message in text and "\n" not in text and str(path) in text


def test_truncated_and_damaged_files(small_model_path, tmp_path):
    blob = small_model_path.read_bytes()
    for cut in (10, len(blob) // 2, len(blob) - 30):
        p = tmp_path / f"cut{cut}.npz"
        p.write_bytes(blob[:cut])
        with pytest.raises(ml.ModelFileError):
            ml.load(p)
    damaged = bytearray(blob)
    damaged[len(blob) // 3: len(blob) // 3 + 64] = b"\x00" * 64
    p = tmp_path / "damaged.npz"
    p.write_bytes(bytes(damaged))
    with pytest.raises(ml.ModelFileError):
        ml.load(p)
    with pytest.raises(ml.ModelFileError, match="no such model file") as e:
        ml.load(tmp_path / "missing.npz")
    assert "scripts/" not in str(e.value)   # the library names no CLI; the CLIs add their hint


def test_random_bytes_never_escape_as_other_errors(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(50):
        p = tmp_path / f"r{i}.npz"
        p.write_bytes(rng.bytes(int(rng.integers(0, 2000))))
        with pytest.raises(ml.ModelFileError):
            ml.load(p)


def test_save_is_atomic_and_keeps_the_old_file_on_failure(small_model, tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    ml.save(small_model, path)
    before = path.read_bytes()

    def broken(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken)
    with pytest.raises(OSError):
        ml.save(small_model, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]  # no temp files left behind


def test_pickle_is_never_loaded(tmp_path):
    """An object array would need pickle; loading refuses instead of executing anything."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        with z.open("W0.npy", "w") as f:
            np.lib.format.write_array(f, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    p = tmp_path / "pickle.npz"
    p.write_bytes(buf.getvalue())
    with pytest.raises(ml.ModelFileError):
        ml.load(p)
