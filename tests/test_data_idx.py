"""IDX read/write and load_mnist: round trips, every malformed file, and a verified download."""
import functools
import gzip
import http.server
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import mnistlite as ml
from mnistlite.data.mnist import FILES, find_mnist


@settings(max_examples=40, deadline=None)
@given(hnp.arrays(st.sampled_from([np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]),
                  hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=6)),
       st.booleans())
def test_write_read_round_trip(tmp_path_factory, array, compress):
    path = tmp_path_factory.mktemp("idx") / ("a.idx.gz" if compress else "a.idx")
    ml.write_idx(path, array)
    back = ml.read_idx(path)
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == compress


def test_real_mnist_shapes(mnist_uint8, mnist_dir):
    (x, y), (xt, yt) = mnist_uint8
    assert x.shape == (60000, 28, 28) and x.dtype == np.uint8 and xt.shape == (10000, 28, 28)
    assert y.dtype == np.int64 and set(np.unique(y)) == set(range(10))
    raw = ml.read_idx(mnist_dir / FILES["test_labels"])
    assert raw.shape == (10000,) and raw[:5].tolist() == [7, 2, 1, 0, 4]


def _write(path, payload, gz=False):
    path.write_bytes(gzip.compress(payload) if gz else payload)
    return path


@pytest.mark.parametrize("payload, message", [
    (b"", "too short"),
    (b"\x00\x00", "too short"),
    (b"\x12\x34\x08\x01" + b"\x00" * 8, "bad magic"),
    (b"\x00\x00\x07\x01\x00\x00\x00\x01\x00", "bad magic"),
    (b"\x00\x00\x08\x03\x00\x00\x00\x02", "truncated header"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x05\x01\x02", "truncated: dims [5] need 13 bytes, file has 10"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x01\x01\x02", "has trailing bytes"),
    (b"\x00\x00\x08\x00", "0 dimensions"),
])
@pytest.mark.parametrize("gz", [False, True])
def test_malformed_idx_files_name_the_file_and_the_fault(tmp_path, payload, message, gz):
    path = _write(tmp_path / "bad-idx1-ubyte", payload, gz)
    with pytest.raises(ml.IDXError) as e:
        ml.read_idx(path)
    assert message in str(e.value) and str(path) in str(e.value) and "\n" not in str(e.value)


def test_truncated_gzip_and_missing_file(tmp_path, mnist_dir):
    blob = (mnist_dir / FILES["test_labels"]).read_bytes()
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ml.IDXError, match="corrupt or truncated gzip"):
        ml.read_idx(path)
    with pytest.raises(ml.IDXError, match="cannot read"):
        ml.read_idx(tmp_path / "nope.gz")


def test_images_and_labels_must_agree(tmp_path):
    ml.write_idx(tmp_path / "i.gz", np.zeros((3, 28, 28), np.uint8))
    ml.write_idx(tmp_path / "l.gz", np.zeros(4, np.uint8))
    with pytest.raises(ml.IDXError, match="has 3 images but .* has 4 labels"):
        ml.data.mnist.load_idx_pair(tmp_path / "i.gz", tmp_path / "l.gz")


def test_data_dir_missing_files_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("MNISTLITE_DATA_DIR", str(tmp_path))
    with pytest.raises(ml.DatasetError, match="MNISTLITE_DATA_DIR=.* is missing train-images"):
        ml.load_mnist()


@pytest.fixture
def mirror(mnist_dir, tmp_path):
    """A local HTTP mirror on 127.0.0.1 serving a folder; yields (url, folder)."""
    root = tmp_path / "mirror"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", root
    server.shutdown()


def test_download_verifies_sha256_and_caches(mnist_dir, mirror, tmp_path, monkeypatch, capsys, caplog):
    url, root = mirror
    for name in FILES.values():
        # a different gzip wrapper around the same content must still verify
        (root / name).write_bytes(gzip.compress(gzip.decompress((mnist_dir / name).read_bytes()), 1))
    monkeypatch.delenv("MNISTLITE_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("MNISTLITE_MNIST_MIRRORS", f"http://127.0.0.1:9/, {url}")
    caplog.set_level("INFO", logger="mnistlite")
    (x, y), (xt, yt) = ml.load_mnist(as_float=False)
    assert x.shape == (60000, 28, 28) and yt.shape == (10000,)
    assert find_mnist(download=False) == tmp_path / "cache" / "mnistlite" / "mnist"
    # the library prints nothing: each download is a log record, which the scripts show
    out, err = capsys.readouterr()   # (the test mirror's HTTP server logs its requests on stderr)
    assert out == "" and "downloaded" not in err
    assert sorted(r.getMessage().split()[1] for r in caplog.records) == sorted(FILES.values())


def test_download_rejects_tampered_files_and_offline_says_set_the_env(mnist_dir, mirror, tmp_path,
                                                                     monkeypatch):
    url, root = mirror
    name = FILES["train_images"]  # the first file fetched: the download must stop right there
    content = bytearray(gzip.decompress((mnist_dir / name).read_bytes()))
    content[-1] ^= 1
    (root / name).write_bytes(gzip.compress(bytes(content), 1))
    monkeypatch.delenv("MNISTLITE_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("MNISTLITE_MNIST_MIRRORS", url)
    with pytest.raises(ml.DatasetError, match="SHA-256 mismatch.*set MNISTLITE_DATA_DIR"):
        ml.load_mnist()
    assert not any((tmp_path / "cache" / "mnistlite" / "mnist").glob("*.gz"))
    monkeypatch.setenv("MNISTLITE_MNIST_MIRRORS", "http://127.0.0.1:9/")
    with pytest.raises(ml.DatasetError, match="offline\\? set MNISTLITE_DATA_DIR"):
        ml.load_mnist()
