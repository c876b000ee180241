"""MNIST: find, download, verify, parse and cache the four IDX files; splits, normalisation, a tf.data adapter
(the PyTorch one, `torch_loader`, lives with the training loop in helpers.train).

Where `load_mnist()` looks, in order:
1. the parsed cache `data/mnist/mnist.npz` (re-verified against the canonical checksums on every load);
2. the folder named by $MNIST_DIR, if set (its files are verified and never modified);
3. the repository cache `data/mnist/*.gz` (a corrupt file there is deleted and downloaded again);
4. a download from the mirrors (or $MNIST_MIRRORS), verified before it is moved into place.

Every file is checked by the SHA-256 of its *decompressed* IDX content, so a re-compressed copy passes too.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import struct
import sys
import tempfile
import time
import urllib.error
import urllib.request
import warnings
import zlib
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .core import atomic_file, data_dir

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
# SHA-256 of the decompressed IDX files: the canonical MNIST content, whichever mirror served it.
SHA256 = {
    "train_images": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train_labels": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "test_images": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "test_labels": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",  # the mirror torchvision uses
    "https://storage.googleapis.com/cvdf-datasets/mnist/",  # the mirror TensorFlow Datasets uses
    # PaddlePaddle's (paddle.vision.datasets.MNIST), in Beijing: reachable from mainland China, where Google is not
    "https://dataset.bj.bcebos.com/mnist/",
)
DIR_VARIABLE = "MNIST_DIR"
MIRRORS_VARIABLE = "MNIST_MIRRORS"
MEAN, STD = 0.1307, 0.3081  # pixel mean and standard deviation of the training set (computed in Chapter 2)
BACKGROUND = -MEAN / STD  # a black (0) pixel after normalisation: what augmentation fills the borders with
TIMEOUT = 30.0  # seconds without data before a download attempt gives up
RETRIES = 3  # attempts per mirror for a transient failure
RETRY_WAIT = 1.0  # seconds before the first retry; doubles each time


class MNISTError(RuntimeError):
    """A problem with an MNIST file or source; the message names the file, the problem and the fix."""


class _GiveUpMirror(Exception):
    """A failure that retrying the same mirror will not mend (HTTP 4xx, wrong content)."""


# ---------------------------------------------------------------- IDX parsing and checking


def parse_idx(raw: bytes, name: str = "IDX data") -> np.ndarray:
    """Parse the bytes of an unsigned-byte IDX file (MNIST images or labels) into a uint8 array."""
    if len(raw) < 8:
        raise MNISTError(f"{name}: only {len(raw)} bytes, too short for an IDX header (the file is truncated)")
    if raw[:3] != b"\x00\x00\x08" or raw[3] not in (1, 3):
        raise MNISTError(
            f"{name}: bad magic number 0x{raw[:4].hex()}; MNIST files start with 0x00000801 (labels) "
            "or 0x00000803 (images). This is not an MNIST IDX file."
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise MNISTError(f"{name}: {len(raw)} bytes, too short for a {ndim}-dimensional IDX header (truncated)")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    if ndim == 3 and dims[1:] != (28, 28):
        raise MNISTError(f"{name}: images are {dims[1]}x{dims[2]} pixels; MNIST images are 28x28")
    size = int(np.prod(dims))
    if len(raw) - header != size:
        problem = "truncated" if len(raw) - header < size else "has extra bytes"
        raise MNISTError(
            f"{name}: {problem}: the header promises shape {tuple(dims)} = {size:,} bytes of data, "
            f"the file holds {len(raw) - header:,}"
        )
    array = np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims).copy()
    if ndim == 1 and array.size and array.max() > 9:
        raise MNISTError(f"{name}: label {array.max()} found; MNIST labels are 0..9")
    return array


def read_raw(path: Path) -> bytes:
    """The decompressed bytes of an IDX file, gzipped or not."""
    data = Path(path).read_bytes()
    if data[:2] != b"\x1f\x8b":
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as err:
        raise MNISTError(f"{path}: not a valid gzip file ({err}); it is probably truncated or damaged") from err


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (.gz or raw) into a uint8 array, with a clear error if it is malformed."""
    return parse_idx(read_raw(path), name=str(path))


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of a uint8 array of 1 or 3 dimensions (inverse of parse_idx)."""
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def _problem(path: Path, expected_sha256: str) -> str | None:
    """Why the file at `path` is not the expected IDX content, or None if it is."""
    try:
        raw = read_raw(path)
        parse_idx(raw, name=str(path))
    except MNISTError as err:
        return str(err)
    except OSError as err:
        return f"{path}: cannot be read ({err})"
    digest = hashlib.sha256(raw).hexdigest()
    if digest != expected_sha256:
        return (f"{path}: checksum mismatch (SHA-256 of the decompressed content is {digest[:12]}…, "
                f"expected {expected_sha256[:12]}…)")
    return None


# ---------------------------------------------------------------- finding and downloading


def mirrors() -> list[str]:
    """The download mirrors: $MNIST_MIRRORS (comma- or space-separated base URLs) or the defaults."""
    value = os.environ.get(MIRRORS_VARIABLE, "")
    return value.replace(",", " ").split() or list(MIRRORS)


def _how_to_place(cache: Path, urls: list[str]) -> str:
    names = ", ".join(f"{stem}.gz" for stem in FILES.values())
    return (
        f"To fix: download the four files ({names}) by hand from one of\n    " + "\n    ".join(urls)
        + f"\nand put them in {cache}, or set {DIR_VARIABLE} to a folder that holds them."
    )


def _fetch(url: str, dest: Path, expected_sha256: str, progress: bool) -> None:
    """Download `url` to a temporary file next to `dest`, verify it, then rename it into place."""
    fd, tmp_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "mnist-course"})
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            total = int(response.headers.get("Content-Length") or 0)
            received = 0
            with tqdm(total=total or None, unit="B", unit_scale=True, desc=dest.name, disable=not progress,
                      leave=False) as bar:
                while chunk := response.read(1 << 16):
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            if total and received != total:
                raise http.client.IncompleteRead(b"", total - received)
        problem = _problem(tmp, expected_sha256)
        if problem:
            raise _GiveUpMirror(problem.replace(str(tmp), url))
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def download(stem: str, dest: Path, expected_sha256: str, urls: list[str] | None = None,
             progress: bool = True) -> Path:
    """Download `<stem>.gz` into `dest`, trying each mirror with retries; raise MNISTError if all fail."""
    urls = urls or mirrors()
    dest.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for base in urls:
        url = base.rstrip("/") + f"/{stem}.gz"
        for attempt in range(1, RETRIES + 1):
            try:
                _fetch(url, dest, expected_sha256, progress)
                return dest
            except urllib.error.HTTPError as err:
                failures.append(f"{url}: HTTP {err.code} {err.reason}")
                if err.code < 500:
                    break
            except _GiveUpMirror as err:
                failures.append(str(err))
                break
            except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
                reason = getattr(err, "reason", None) or err
                if isinstance(err, http.client.IncompleteRead):
                    reason = f"connection closed early, {err.expected:,} bytes missing"
                failures.append(f"{url}: {reason} (attempt {attempt} of {RETRIES})")
            if attempt < RETRIES:
                time.sleep(RETRY_WAIT * 2 ** (attempt - 1))
    raise MNISTError(
        f"Could not download {stem}.gz. Mirrors tried:\n  " + "\n  ".join(failures) + "\n"
        + _how_to_place(dest.parent, urls)
    )


def mnist_files(cache: Path | None = None, checksums: dict[str, str] = SHA256,
                progress: bool = True) -> dict[str, Path]:
    """Paths of the four verified MNIST files: from $MNIST_DIR, else the cache, else downloaded into the cache."""
    cache = Path(cache) if cache else data_dir() / "mnist"
    user_dir = os.environ.get(DIR_VARIABLE)
    if user_dir:
        return _user_files(Path(user_dir), checksums)
    cache.mkdir(parents=True, exist_ok=True)
    paths = {}
    for key, stem in FILES.items():
        path = cache / f"{stem}.gz"
        if path.exists():
            problem = _problem(path, checksums[key])
            if problem is None:
                paths[key] = path
                continue
            warnings.warn(f"corrupt cache file replaced: {problem}", stacklevel=2)
            path.unlink()
        paths[key] = download(stem, path, checksums[key], progress=progress)
    return paths


def _user_files(folder: Path, checksums: dict[str, str]) -> dict[str, Path]:
    """Verify the four files in a folder the user named; report every problem and change nothing."""
    if not folder.is_dir():
        raise MNISTError(f"{DIR_VARIABLE}={folder} is not a folder. Point it at the folder holding the four MNIST "
                         f"files, or unset {DIR_VARIABLE} to download them into the course's data/ folder.")
    paths, problems = {}, []
    for key, stem in FILES.items():
        path = next((p for p in (folder / f"{stem}.gz", folder / stem) if p.is_file()), None)
        if path is None:
            problems.append(f"{folder / stem}.gz: missing")
            continue
        problem = _problem(path, checksums[key])
        if problem:
            problems.append(problem)
        paths[key] = path
    if problems:
        raise MNISTError(
            f"The MNIST files in {DIR_VARIABLE}={folder} failed verification (nothing there was changed):\n  "
            + "\n  ".join(problems)
            + f"\nTo fix: replace them with the canonical files from {MIRRORS[0]}, or unset {DIR_VARIABLE}."
        )
    return paths


# ---------------------------------------------------------------- loading with a verified cache


def _read_cache(npz: Path, checksums: dict[str, str]) -> dict[str, np.ndarray] | None:
    """The arrays in the parsed cache if it matches the checksums exactly; None (with a warning) otherwise."""
    if not npz.exists():
        return None
    try:
        with np.load(npz, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in FILES}
        bad = [key for key, a in arrays.items() if hashlib.sha256(idx_bytes(a)).hexdigest() != checksums[key]]
    except Exception as err:  # a damaged archive can fail in many ways; all mean "rebuild it"
        bad = [f"unreadable ({type(err).__name__}: {err})"]
    if bad:
        warnings.warn(f"{npz}: corrupt parsed cache ({', '.join(bad)} wrong); rebuilding it", stacklevel=3)
        npz.unlink()
        return None
    return arrays


def _write_cache(npz: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write the parsed arrays atomically (temporary file, then rename)."""
    with atomic_file(npz) as out:
        np.savez(out, **arrays)


def load_mnist(cache: Path | None = None, checksums: dict[str, str] = SHA256, progress: bool = True):
    """MNIST as uint8 arrays: (x_train (60000,28,28), y_train (60000,)), (x_test (10000,28,28), y_test (10000,))."""
    cache = Path(cache) if cache else data_dir() / "mnist"
    cache.mkdir(parents=True, exist_ok=True)
    npz = cache / "mnist.npz"
    arrays = _read_cache(npz, checksums)
    if arrays is None:
        paths = mnist_files(cache, checksums, progress)
        arrays = {key: read_idx(path) for key, path in paths.items()}
        for split in ("train", "test"):
            n_images, n_labels = len(arrays[f"{split}_images"]), len(arrays[f"{split}_labels"])
            if n_images != n_labels:
                raise MNISTError(f"{paths[split + '_images']}: {n_images} images but {n_labels} labels")
        _write_cache(npz, arrays)
    return (arrays["train_images"], arrays["train_labels"]), (arrays["test_images"], arrays["test_labels"])


# ---------------------------------------------------------------- splits and framework adapters


def split_train_val(x: np.ndarray, y: np.ndarray, val_size: int = 5000, seed: int = 0):
    """A seeded random split: ((x_train, y_train), (x_val, y_val)) with val_size validation images."""
    if not 0 < val_size < len(x):
        raise ValueError(f"val_size must be between 1 and {len(x) - 1}, got {val_size}")
    order = np.random.default_rng(seed).permutation(len(x))
    val, train = order[:val_size], order[val_size:]
    return (x[train], y[train]), (x[val], y[val])


def subset(x: np.ndarray, y: np.ndarray, n: int | None, seed: int = 0):
    """A seeded random subset of n examples (all of them if n is None or too large)."""
    if n is None or n >= len(x):
        return x, y
    keep = np.sort(np.random.default_rng(seed).choice(len(x), n, replace=False))
    return x[keep], y[keep]


def normalize(x: np.ndarray) -> np.ndarray:
    """uint8 pixels to float32, standardised with the training set's mean and standard deviation."""
    return ((x.astype(np.float32) / 255.0) - MEAN) / STD


def tf_dataset(x: np.ndarray, y: np.ndarray, batch_size: int = 128, shuffle: bool = False, seed: int = 0,
               flatten: bool = False):
    """A tf.data.Dataset of normalised images (N, 28, 28, 1), or (N, 784) with flatten=True, batched."""
    from .core import quiet_tensorflow

    quiet_tensorflow()
    import tensorflow as tf

    images = normalize(x).reshape(len(x), -1) if flatten else normalize(x)[..., None]
    dataset = tf.data.Dataset.from_tensor_slices((images, y.astype(np.int64)))
    if shuffle:
        dataset = dataset.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def main() -> int:
    """Fetch, verify and parse MNIST, then print a one-line summary (used by `make data`)."""
    try:
        start = time.perf_counter()
        (x_train, y_train), (x_test, y_test) = load_mnist()
    except MNISTError as err:
        print(f"MNIST: {err}", file=sys.stderr)
        return 1
    print(f"MNIST verified: train {x_train.shape}, test {x_test.shape}, "
          f"cache {data_dir() / 'mnist'} ({time.perf_counter() - start:.2f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
