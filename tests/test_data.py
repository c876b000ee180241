"""The MNIST data layer against a local HTTP server serving small generated IDX files, and the real copy."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import threading
import urllib.error
from pathlib import Path

import numpy as np
import pytest

from helpers import data
from helpers.data import FILES, MNISTError, idx_bytes, load_mnist, parse_idx

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


# ---------------------------------------------------------------- a fake MNIST: 30 train and 10 test images


@pytest.fixture(scope="module")
def fake():
    """Small generated MNIST-format arrays, their .gz files' bytes and their checksums."""
    rng = np.random.default_rng(0)
    arrays = {
        "train_images": rng.integers(0, 256, (30, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, 30, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (10, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, 10, dtype=np.uint8),
    }
    raw = {key: idx_bytes(a) for key, a in arrays.items()}
    return {
        "arrays": arrays,
        "gz": {f"{FILES[k]}.gz": gzip.compress(r) for k, r in raw.items()},
        "sha": {k: hashlib.sha256(r).hexdigest() for k, r in raw.items()},
    }


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves /<mirror>/<file>: 'good' serves the files, 'missing' 404s, 'truncated' cuts the body short,
    'wrong' serves other content, 'stall' sends half and then waits past the client's timeout."""

    files: dict[str, bytes] = {}
    hits: list[str] = []

    def do_GET(self):  # noqa: N802 - the name http.server calls
        self.hits.append(self.path)
        mirror, _, name = self.path.strip("/").partition("/")
        body = self.files.get(name)
        if mirror == "missing" or body is None:
            self.send_error(404)
            return
        if mirror == "wrong":
            body = gzip.compress(idx_bytes(np.zeros(len(body) % 7 + 3, np.uint8)))
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mirror in ("truncated", "stall"):
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            if mirror == "stall":
                threading.Event().wait(1.5)
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server(fake):
    """A local HTTP server on 127.0.0.1; yields its base URL."""
    Handler.files = fake["gz"]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    """No waiting between retries, a short timeout, no $MNIST_DIR from the caller's shell."""
    monkeypatch.setattr(data, "RETRY_WAIT", 0.0)
    monkeypatch.setattr(data, "TIMEOUT", 1.0)
    monkeypatch.delenv(data.DIR_VARIABLE, raising=False)
    Handler.hits.clear()


def use_mirrors(monkeypatch, *urls):
    monkeypatch.setenv(data.MIRRORS_VARIABLE, " ".join(urls))


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def assert_same(loaded, arrays):
    (x_train, y_train), (x_test, y_test) = loaded
    np.testing.assert_array_equal(x_train, arrays["train_images"])
    np.testing.assert_array_equal(y_train, arrays["train_labels"])
    np.testing.assert_array_equal(x_test, arrays["test_images"])
    np.testing.assert_array_equal(y_test, arrays["test_labels"])


# ---------------------------------------------------------------- downloads


def test_good_mirror_downloads_verifies_and_caches(tmp_path, monkeypatch, server, fake):
    use_mirrors(monkeypatch, f"{server}/good/")
    assert_same(load_mnist(tmp_path, fake["sha"], progress=False), fake["arrays"])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*fake["gz"], "mnist.npz"])
    Handler.hits.clear()
    assert_same(load_mnist(tmp_path, fake["sha"], progress=False), fake["arrays"])
    assert Handler.hits == [], "a second load must come from the cache, not the network"


def test_first_mirror_404_then_second_good(tmp_path, monkeypatch, server, fake):
    use_mirrors(monkeypatch, f"{server}/missing", f"{server}/good")
    assert_same(load_mnist(tmp_path, fake["sha"], progress=False), fake["arrays"])
    assert Handler.hits[:2] == ["/missing/train-images-idx3-ubyte.gz", "/good/train-images-idx3-ubyte.gz"]


def test_truncated_body_is_retried_then_next_mirror(tmp_path, monkeypatch, server, fake):
    use_mirrors(monkeypatch, f"{server}/truncated", f"{server}/good")
    assert_same(load_mnist(tmp_path, fake["sha"], progress=False), fake["arrays"])
    truncated = [h for h in Handler.hits if h.startswith("/truncated/train-images")]
    assert len(truncated) == data.RETRIES
    assert leftovers(tmp_path) == []


def test_truncated_everywhere_fails_clearly_and_leaves_nothing(tmp_path, monkeypatch, server, fake):
    use_mirrors(monkeypatch, f"{server}/truncated")
    with pytest.raises(MNISTError, match="connection closed early") as err:
        load_mnist(tmp_path, fake["sha"], progress=False)
    assert "train-images-idx3-ubyte.gz" in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_wrong_checksum_is_rejected(tmp_path, monkeypatch, server, fake):
    use_mirrors(monkeypatch, f"{server}/wrong")
    with pytest.raises(MNISTError, match="checksum mismatch") as err:
        load_mnist(tmp_path, fake["sha"], progress=False)
    assert f"{server}/wrong/train-images-idx3-ubyte.gz" in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_stalled_download_times_out_without_partial_file(tmp_path, monkeypatch, server, fake):
    monkeypatch.setattr(data, "RETRIES", 1)
    use_mirrors(monkeypatch, f"{server}/stall")
    with pytest.raises(MNISTError, match="timed out"):
        load_mnist(tmp_path, fake["sha"], progress=False)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_download_leaves_no_partial_file(tmp_path, monkeypatch, server, fake):
    class Interrupt:
        """Stands in for tqdm: the reader presses Ctrl-C after the first chunk."""

        def __init__(self, *args, **kwargs):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, n):
            raise KeyboardInterrupt

    monkeypatch.setattr(data, "tqdm", Interrupt)
    use_mirrors(monkeypatch, f"{server}/good")
    with pytest.raises(KeyboardInterrupt):
        load_mnist(tmp_path, fake["sha"])
    assert list(tmp_path.iterdir()) == []


def test_offline_with_nothing_cached_lists_mirrors_and_the_fix(tmp_path, monkeypatch, fake):
    closed = "http://127.0.0.1:9"  # the discard port: nothing listens, the connection is refused at once
    use_mirrors(monkeypatch, f"{closed}/a/", f"{closed}/b/")
    with pytest.raises(MNISTError) as err:
        load_mnist(tmp_path, fake["sha"], progress=False)
    message = str(err.value)
    assert f"{closed}/a/train-images-idx3-ubyte.gz" in message and f"{closed}/b/train-images-idx3-ubyte.gz" in message
    assert "To fix" in message and str(tmp_path) in message and data.DIR_VARIABLE in message
    assert list(tmp_path.iterdir()) == []


def test_default_mirrors_in_order_with_a_mirror_reachable_from_mainland_china(tmp_path, monkeypatch):
    tried = []

    def not_found(url, dest, expected_sha256, progress):
        tried.append(url)
        raise urllib.error.HTTPError(url, 404, "Not Found", {}, None)

    monkeypatch.delenv(data.MIRRORS_VARIABLE, raising=False)
    monkeypatch.setattr(data, "_fetch", not_found)
    with pytest.raises(MNISTError) as err:
        data.download("t10k-labels-idx1-ubyte", tmp_path / "t10k-labels-idx1-ubyte.gz", "0" * 64, progress=False)
    assert tried == [base + "t10k-labels-idx1-ubyte.gz" for base in data.MIRRORS]  # each once: a 404 is final
    assert "https://dataset.bj.bcebos.com/mnist/t10k-labels-idx1-ubyte.gz" in tried  # PaddlePaddle's, in Beijing
    assert all(url in str(err.value) for url in tried)


def test_mirrors_variable_replaces_the_defaults(monkeypatch):
    monkeypatch.setenv(data.MIRRORS_VARIABLE, " https://a.example/mnist/, https://b.example/x  ")
    assert data.mirrors() == ["https://a.example/mnist/", "https://b.example/x"]
    monkeypatch.setenv(data.MIRRORS_VARIABLE, "")
    assert data.mirrors() == list(data.MIRRORS)


# ---------------------------------------------------------------- caches and the user's folder


def test_corrupt_cache_file_is_replaced(tmp_path, monkeypatch, server, fake):
    use_mirrors(monkeypatch, f"{server}/good")
    bad = tmp_path / "t10k-labels-idx1-ubyte.gz"
    bad.write_bytes(fake["gz"]["t10k-labels-idx1-ubyte.gz"][:-10])  # a truncated download from an older run
    for name, body in fake["gz"].items():
        if name != bad.name:
            (tmp_path / name).write_bytes(body)
    with pytest.warns(UserWarning, match="corrupt cache file replaced"):
        assert_same(load_mnist(tmp_path, fake["sha"], progress=False), fake["arrays"])
    assert Handler.hits == ["/good/t10k-labels-idx1-ubyte.gz"]
    assert bad.read_bytes() == fake["gz"][bad.name]


def test_corrupt_parsed_cache_is_rebuilt_not_used(tmp_path, monkeypatch, server, fake):
    use_mirrors(monkeypatch, f"{server}/good")
    load_mnist(tmp_path, fake["sha"], progress=False)
    arrays = dict(fake["arrays"])
    arrays["train_labels"] = (arrays["train_labels"] + 1) % 10  # right shape, wrong content
    np.savez(tmp_path / "mnist.npz", **arrays)
    with pytest.warns(UserWarning, match="corrupt parsed cache"):
        assert_same(load_mnist(tmp_path, fake["sha"], progress=False), fake["arrays"])
    (tmp_path / "mnist.npz").write_bytes(b"not a zip file")
    with pytest.warns(UserWarning, match="corrupt parsed cache"):
        assert_same(load_mnist(tmp_path, fake["sha"], progress=False), fake["arrays"])


def test_good_user_folder_is_used_without_network(tmp_path, monkeypatch, fake):
    folder = tmp_path / "mine"
    folder.mkdir()
    for name, body in fake["gz"].items():
        (folder / name).write_bytes(body)
    monkeypatch.setenv(data.DIR_VARIABLE, str(folder))
    use_mirrors(monkeypatch, "http://127.0.0.1:9/")
    assert_same(load_mnist(tmp_path / "cache", fake["sha"], progress=False), fake["arrays"])


def test_bad_user_folder_is_reported_and_untouched(tmp_path, monkeypatch, fake):
    folder = tmp_path / "mine"
    folder.mkdir()
    for name, body in fake["gz"].items():
        (folder / name).write_bytes(body)
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01" + b"\x00" * 8))
    (folder / "t10k-images-idx3-ubyte.gz").unlink()
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    monkeypatch.setenv(data.DIR_VARIABLE, str(folder))
    with pytest.raises(MNISTError) as err:
        load_mnist(tmp_path / "cache", fake["sha"], progress=False)
    message = str(err.value)
    assert "train-labels-idx1-ubyte.gz" in message and "t10k-images-idx3-ubyte.gz: missing" in message
    assert "nothing there was changed" in message
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_user_folder_that_does_not_exist(tmp_path, monkeypatch, fake):
    monkeypatch.setenv(data.DIR_VARIABLE, str(tmp_path / "nowhere"))
    with pytest.raises(MNISTError, match="is not a folder"):
        load_mnist(tmp_path / "cache", fake["sha"], progress=False)


# ---------------------------------------------------------------- malformed IDX files name the file and the problem


@pytest.mark.parametrize("raw, problem", [
    (b"\x00\x00\x08\x03" + (2).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2 + bytes(784), "truncated"),
    (b"\x00\x00\x08\x03" + (1).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2 + bytes(785), "extra bytes"),
    (b"\x89PNG\r\n\x1a\n" + bytes(100), "bad magic number"),
    (b"\x00\x00\x08\x03" + (1).to_bytes(4, "big") + (32).to_bytes(4, "big") * 2 + bytes(1024), "32x32"),
    (b"\x00\x00\x08\x01" + (2).to_bytes(4, "big") + bytes([3, 12]), "label 12"),
    (b"\x00\x00", "too short"),
])
def test_malformed_idx_names_file_and_problem(raw, problem):
    with pytest.raises(MNISTError, match=problem) as err:
        parse_idx(raw, name="some/file-idx3-ubyte")
    assert "some/file-idx3-ubyte" in str(err.value)


def test_broken_gzip_names_the_file(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    body = gzip.compress(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    path.write_bytes(body[: len(body) // 2])
    with pytest.raises(MNISTError, match="not a valid gzip file") as err:
        data.read_idx(path)
    assert str(path) in str(err.value)


def test_idx_round_trip():
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    np.testing.assert_array_equal(parse_idx(idx_bytes(images)), images)


# ---------------------------------------------------------------- the real MNIST


@pytest.fixture(scope="module")
def real_folder() -> Path:
    """The folder holding the four real MNIST files: $MNIST_DIR, or the course cache that `make data` filled."""
    import os

    folder = Path(os.environ.get(data.DIR_VARIABLE) or data.data_dir() / "mnist")
    if not all((folder / f"{stem}.gz").exists() for stem in FILES.values()):
        pytest.fail(f"the real MNIST files are not in {folder}: run `make data` (or set {data.DIR_VARIABLE})")
    return folder


def test_real_mnist_shapes_labels_and_checksums(tmp_path, monkeypatch, real_folder):
    monkeypatch.setenv(data.DIR_VARIABLE, str(real_folder))
    (x_train, y_train), (x_test, y_test) = load_mnist(tmp_path, progress=False)  # parsed from the .gz files
    assert x_train.shape == (60000, 28, 28) and y_train.shape == (60000,)
    assert x_test.shape == (10000, 28, 28) and y_test.shape == (10000,)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.uint8
    assert np.bincount(y_train).tolist() == TRAIN_COUNTS
    assert np.bincount(y_test).tolist() == TEST_COUNTS
    for key, array in zip(FILES, (x_train, y_train, x_test, y_test), strict=True):
        assert hashlib.sha256(idx_bytes(array)).hexdigest() == data.SHA256[key]
    assert round(float(x_train.mean() / 255), 4) == data.MEAN
    assert round(float((x_train / 255).std()), 4) == data.STD
