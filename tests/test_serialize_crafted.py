"""Crafted model files: the zip's directory is judged before any member is read (names, declared sizes),
and metadata nested too deep is a clear ModelFileError, never a RecursionError."""
from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

import mnistlite as ml
from mnistlite import serialize

GOOD = {"W0": np.zeros((4, 3), np.float32), "b0": np.zeros(3, np.float32)}
META = {"format": "mnistlite.mlp", "format_version": 1, "layer_sizes": [4, 3], "activation": "relu"}


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, a, allow_pickle=False)
    return buf.getvalue()


def _model_zip(meta=None, arrays=None, extra=None) -> io.BytesIO:
    """An .npz as np.savez writes it (stored members), plus ``extra(zipfile)`` to add more."""
    buf = io.BytesIO()
    raw_meta = json.dumps(META if meta is None else meta).encode()
    with zipfile.ZipFile(buf, "w") as z:
        for key, a in (GOOD if arrays is None else arrays).items():
            z.writestr(f"{key}.npy", _npy(a))
        z.writestr("__meta__.npy", _npy(np.frombuffer(raw_meta, np.uint8)))
        if extra:
            extra(z)
    return buf


@pytest.fixture
def opened(monkeypatch):
    """The names of the members a load opened (to show what was never read)."""
    names = []
    real = zipfile.ZipFile.open

    def spy(self, name, *a, **k):
        names.append(name.filename if isinstance(name, zipfile.ZipInfo) else name)
        return real(self, name, *a, **k)

    monkeypatch.setattr(zipfile.ZipFile, "open", spy)
    return names


def test_the_crafting_helper_makes_a_loadable_model():
    model = ml.loads(_model_zip().getvalue())
    assert model.layer_sizes == [4, 3]


def test_an_extra_1_gib_deflated_member_is_refused_unread(opened):
    def deflated(z):  # 1 GiB inflated, a few MB on disk
        z.compression, z.compresslevel = zipfile.ZIP_DEFLATED, 1
        zeros = bytes(64 << 20)
        with z.open("extra.npy", "w", force_zip64=True) as f:
            for _ in range(16):
                f.write(zeros)

    blob = _model_zip(extra=deflated).getvalue()
    assert len(blob) < 8 << 20
    with zipfile.ZipFile(io.BytesIO(blob)) as z:
        assert z.getinfo("extra.npy").file_size == 1 << 30
    opened.clear()
    with pytest.raises(ml.ModelFileError, match=r"arrays \['W0', 'b0', 'extra'\] do not match"):
        ml.loads(blob, name="crafted.npz")
    assert "extra.npy" not in opened and not any(n.startswith("W0") for n in opened)


def test_an_expected_member_that_declares_more_than_its_shape_needs_is_refused_unread(opened):
    big = np.zeros((4, 3 + 2000), np.float32)  # right name, header and data far past (4, 3)
    blob = _model_zip(arrays={"W0": big, "b0": GOOD["b0"]}).getvalue()
    opened.clear()
    with pytest.raises(ml.ModelFileError, match=r"array W0 declares \d+ bytes; shape \(4, 3\) needs at most"):
        ml.loads(blob, name="crafted.npz")
    assert opened == ["__meta__.npy"]


def test_a_huge_metadata_member_is_refused_unread(opened):
    def huge_meta(z):
        z.writestr("__meta__.npy", b"\x00" * (serialize.META_MAX_BYTES + 1))

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for key, a in GOOD.items():
            z.writestr(f"{key}.npy", _npy(a))
        huge_meta(z)
    opened.clear()
    with pytest.raises(ml.ModelFileError, match="metadata entry declares"):
        ml.loads(buf.getvalue(), name="crafted.npz")
    assert opened == []


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_a_member_twice_is_refused():
    blob = _model_zip(extra=lambda z: z.writestr("W0.npy", _npy(GOOD["W0"]))).getvalue()
    with pytest.raises(ml.ModelFileError, match="appears twice"):
        ml.loads(blob)


def test_a_header_shape_other_than_the_layer_sizes_is_refused_before_its_data():
    blob = _model_zip(arrays={"W0": np.zeros((3, 4), np.float32), "b0": GOOD["b0"]}).getvalue()
    with pytest.raises(ml.ModelFileError, match=r"W0 has shape \(3, 4\), expected \(4, 3\)"):
        ml.loads(blob)


@pytest.mark.parametrize("depth", [40, 5000, 200_000])
def test_deeply_nested_metadata_is_a_clear_error(depth):
    nested = "[" * depth + "]" * depth
    raw = ('{"format": "mnistlite.mlp", "format_version": 1, "layer_sizes": [4, 3], "user": %s}' % nested)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for key, a in GOOD.items():
            z.writestr(f"{key}.npy", _npy(a))
        z.writestr("__meta__.npy", _npy(np.frombuffer(raw.encode(), np.uint8)))
    with pytest.raises(ml.ModelFileError, match="metadata nests deeper than 32 levels") as e:
        ml.loads(buf.getvalue(), name="deep.npz")
    assert "\n" not in str(e.value)


def test_layer_sizes_past_the_parameter_limit_are_refused():
    meta = {**META, "layer_sizes": [100_000, 100_000]}
    with pytest.raises(ml.ModelFileError, match="parameters; the limit is"):
        ml.loads(_model_zip(meta=meta).getvalue())
