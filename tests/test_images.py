"""Weekly PNG folders: names, writing, reading, and every way a file can be unusable."""
from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from mnistlite.data.images import (
    NAME_PATTERN,
    ImageFolder,
    encode_png,
    format_name,
    parse_name,
    read_folder,
    write_folder,
)


@pytest.fixture(scope="module")
def digits(mnist_uint8):
    """40 real test digits and labels."""
    (_, _), (x, y) = mnist_uint8
    return x[:40], y[:40]


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


# --- names --------------------------------------------------------------------------------------

def test_parse_and_format_name_examples():
    assert parse_name("00042_label_7.png") == (42, 7)
    assert parse_name("week-3/1234567_label_0.png") == (1234567, 0)
    assert format_name(42, 7) == "00042_label_7.png"
    assert format_name(np.int64(123456), np.int64(9)) == "123456_label_9.png"


@pytest.mark.parametrize("name, reason", [
    ("7.png", "name does not match NNNNN_label_D.png"),
    ("00001_label_12.png", "label 12 not in 0-9"),
    ("00001_label_-1.png", "label -1 not in 0-9"),
    ("abc_label_3.png", "name does not match"),
    ("0001_label_3.png", "name does not match"),          # four digits: too short
    ("00001_label_3.PNG", "name does not match"),
    ("00001_label_3.png.tmp", "name does not match"),
    ("\u0661\u0662\u0663\u0664\u0665_label_3.png", "name does not match"),  # Arabic-Indic digits
])
def test_parse_name_reports_the_reason(name, reason):
    with pytest.raises(ValueError, match=reason):
        parse_name(name)


@pytest.mark.parametrize("sample_id, label", [(-1, 0), (0, 10), (0, -1), (1.5, 2)])
def test_format_name_rejects_bad_values(sample_id, label):
    with pytest.raises((ValueError, TypeError)):
        format_name(sample_id, label)


@given(st.integers(0, 10**12), st.integers(0, 9))
def test_format_then_parse_round_trips(sample_id, label):
    name = format_name(sample_id, label)
    assert NAME_PATTERN.fullmatch(name)
    assert parse_name(name) == (sample_id, label)


@given(st.text(max_size=30))
def test_parse_name_accepts_only_the_pattern(name):
    try:
        sample_id, label = parse_name(name)
    except ValueError as e:
        assert str(e) == "name does not match NNNNN_label_D.png" or "not in 0-9" in str(e)
    else:
        assert format_name(sample_id, label).split("_", 1)[1] == name.split("_", 1)[1]
        assert int(name.split("_", 1)[0]) == sample_id


# --- write / read -------------------------------------------------------------------------------

def test_write_then_read_round_trips_exactly(tmp_path, digits):
    x, y = digits
    paths = write_folder(tmp_path, x, y, start_id=100)
    assert [p.name for p in paths][:2] == [format_name(100, y[0]), format_name(101, y[1])]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]   # no temp files left
    got = read_folder(tmp_path)
    assert isinstance(got, ImageFolder) and len(got) == len(x) and got.problems == []
    np.testing.assert_array_equal(got.images, x)
    np.testing.assert_array_equal(got.labels, y)
    assert got.images.dtype == np.uint8 and got.labels.dtype == np.int64
    assert got.files == paths


def test_encode_png_is_8bit_grayscale_and_deterministic(digits):
    x, _ = digits
    data = encode_png(x[0])
    im = Image.open(io.BytesIO(data))
    assert (im.format, im.mode, im.size) == ("PNG", "L", (28, 28))
    assert encode_png(x[0]) == data
    np.testing.assert_array_equal(np.asarray(im), x[0])
    with pytest.raises(ValueError, match="uint8"):
        encode_png(x[0].astype(np.float32))


def test_files_are_sorted_by_sample_id_not_by_text(tmp_path, digits):
    x, y = digits
    (tmp_path / format_name(100000, 1)).write_bytes(encode_png(x[0]))
    (tmp_path / format_name(99999, 2)).write_bytes(encode_png(x[1]))
    got = read_folder(tmp_path)
    assert [f.name for f in got.files] == ["99999_label_2.png", "100000_label_1.png"]
    np.testing.assert_array_equal(got.labels, [2, 1])
    np.testing.assert_array_equal(got.images, x[[1, 0]])


def test_every_unusable_file_is_reported(tmp_path, digits):
    x, y = digits
    write_folder(tmp_path, x[:3], y[:3])
    good = encode_png(x[3])
    (tmp_path / "7.png").write_bytes(good)
    (tmp_path / "00010_label_12.png").write_bytes(good)
    (tmp_path / "abc_label_3.png").write_bytes(good)
    (tmp_path / "00011_label_1.png").write_bytes(_png(Image.new("L", (32, 28))))
    (tmp_path / "00018_label_1.png").write_bytes(_png(Image.new("L", (5000, 5000))))
    (tmp_path / "00012_label_1.png").write_bytes(good[: len(good) // 2])
    (tmp_path / "00013_label_1.png").write_bytes(b"")
    (tmp_path / "00014_label_1.png").write_bytes(b"not a png at all")
    jpeg = io.BytesIO()
    Image.fromarray(x[4]).save(jpeg, format="JPEG")
    (tmp_path / "00015_label_1.png").write_bytes(jpeg.getvalue())
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "00016_label_1.jpg").write_bytes(jpeg.getvalue())
    (tmp_path / "00001_label_5.png").write_bytes(good)       # id 1 already exists with label y[1]
    (tmp_path / "report.json").write_text("{}")              # report files are ignored
    (tmp_path / "README.md").write_text("# week")
    (tmp_path / ".00017_label_1.png.abc.tmp").write_bytes(b"half")  # hidden: an unfinished write
    got = read_folder(tmp_path)
    np.testing.assert_array_equal(got.images, x[:3])
    reasons = {p["file"]: p["reason"] for p in got.problems}
    assert reasons.pop("7.png") == "name does not match NNNNN_label_D.png"
    assert reasons.pop("00010_label_12.png") == "label 12 not in 0-9"
    assert reasons.pop("abc_label_3.png") == "name does not match NNNNN_label_D.png"
    assert reasons.pop("00011_label_1.png") == "size 32x28, expected 28x28"
    assert reasons.pop("00018_label_1.png") == "size 5000x5000, expected 28x28"
    assert reasons.pop("00012_label_1.png").startswith("truncated or corrupt image")
    assert reasons.pop("00013_label_1.png") == "empty file"
    assert reasons.pop("00014_label_1.png").startswith("not an image")
    assert reasons.pop("00015_label_1.png").startswith("not an image")    # JPEG data in a .png
    assert reasons.pop("notes.txt") == "not a .png file"
    assert reasons.pop("00016_label_1.jpg") == "not a .png file"
    assert reasons.pop("00001_label_5.png").startswith("duplicate sample id 1")
    assert reasons == {}
    assert [p["file"] for p in got.problems] == sorted(p["file"] for p in got.problems)


def test_other_png_modes_are_converted_to_grayscale(tmp_path, digits):
    x, _ = digits
    (tmp_path / "00000_label_1.png").write_bytes(_png(Image.fromarray(np.stack([x[0]] * 3, -1))))
    (tmp_path / "00001_label_1.png").write_bytes(_png(Image.fromarray(x[1].astype(np.uint16) * 257)))
    (tmp_path / "00002_label_1.png").write_bytes(_png(Image.fromarray(x[2] > 127)))  # 1-bit
    got = read_folder(tmp_path)
    assert got.problems == []
    np.testing.assert_array_equal(got.images[:2], x[:2])
    np.testing.assert_array_equal(got.images[2], np.where(x[2] > 127, 255, 0))


def test_quarantine_hidden_and_recursive(tmp_path, digits):
    x, y = digits
    write_folder(tmp_path / "week-1", x[:5], y[:5], start_id=0)
    write_folder(tmp_path / "week-2", x[5:8], y[5:8], start_id=5)
    write_folder(tmp_path / "week-2" / "quarantine", x[8:10], y[8:10], start_id=8)
    write_folder(tmp_path / ".cache", x[10:12], y[10:12], start_id=10)
    write_folder(tmp_path, x[12:14], y[12:14], start_id=12)
    (tmp_path / "week-2" / "bad.png").write_bytes(b"x")

    flat = read_folder(tmp_path)
    np.testing.assert_array_equal(flat.images, x[12:14])
    assert flat.problems == []

    deep = read_folder(tmp_path, recursive=True)
    order = [*range(0, 8), 12, 13]
    np.testing.assert_array_equal(deep.images, x[order])
    np.testing.assert_array_equal(deep.labels, y[order])
    assert deep.problems == [{"file": "week-2/bad.png", "reason": "name does not match NNNNN_label_D.png"}]
    assert deep.files[0] == tmp_path / "week-1" / format_name(0, y[0])

    week = read_folder(tmp_path / "week-2", recursive=True)    # quarantine/ skipped at any depth
    np.testing.assert_array_equal(week.images, x[5:8])


def test_empty_folder_and_missing_folder(tmp_path):
    got = read_folder(tmp_path)
    assert got.images.shape == (0, 28, 28) and got.labels.shape == (0,) and got.files == []
    with pytest.raises(FileNotFoundError):
        read_folder(tmp_path / "nope")


@pytest.mark.parametrize("images, labels, match", [
    (np.zeros((2, 28, 28), np.float32), [0, 1], "uint8"),
    (np.zeros((2, 28, 27), np.uint8), [0, 1], "uint8"),
    (np.zeros((2, 28, 28), np.uint8), [0], "labels"),
    (np.zeros((2, 28, 28), np.uint8), [0.0, 1.0], "labels"),
    (np.zeros((2, 28, 28), np.uint8), [0, 10], "0-9"),
])
def test_write_folder_validates(tmp_path, images, labels, match):
    with pytest.raises(ValueError, match=match):
        write_folder(tmp_path, images, np.asarray(labels))
    assert list(tmp_path.iterdir()) == []
