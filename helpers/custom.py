"""Your own digits (Chapter 9): labelled folders, a synthetic example set, UCI digits, data checks, predictions.

    x = load_digit("my_seven.jpg")                       # any image file to an MNIST-style uint8 (28, 28)
    make_example_set()                                   # data/custom/<digit>/synthetic_*.png (never overwrites)
    data = load_folder(data_dir() / "custom")            # x (N, 28, 28) uint8, y, files, problems
    mine = load_folder(own_only=own_only())              # your files alone (COURSE_OWN_DIGITS_ONLY=1), no synthetic_*
    train, held_out = own_split(mine)                    # indices: stratified per digit, near-duplicates together
    predictions, fig = predict_files(model, "my_digits/")  # per file: digit, probabilities, what the model saw

Nothing here modifies or deletes a file it did not write; bad files are reported by name and reason, and one bad
file never stops a folder. The preprocessing itself is Chapter 9's, saved from its notebook (helpers.saved.ch09).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .core import data_dir
from .data import normalize
from .images import IMAGE_SUFFIXES, ImageProblem, read_image, resize
from .saved.ch09 import preprocess

IGNORED = {"README.txt", "Thumbs.db", "desktop.ini"}  # files that are no digit and need no warning


class SkippedFilesWarning(UserWarning):
    """Some files or folders were skipped; the message lists each one with its reason."""


def custom_dir() -> Path:
    """The folder for your own labelled digits: data/custom/<digit>/<images>."""
    return data_dir() / "custom"


# The reasons a file is skipped, in Chinese too: the course has a Chinese edition with the same outputs.
REASONS_ZH = {
    "not an image file": "不是图像文件",
    "no such file": "文件不存在",
    "no such folder": "文件夹不存在",
    "not inside a digit folder": "不在数字文件夹（0-9）中",
    "folder name is not a digit": "文件夹名不是数字0-9",
    "no images in this folder": "此文件夹中没有图像",
    "no usable images": "没有可用的图像",
    "megapixels": "图像太大，请先缩小",
    "decompression bomb": "疑似解压炸弹，拒绝读取",
    "not an image Pillow can read": "Pillow无法读取的图像",
    "damaged or truncated": "图像文件损坏或不完整",
    "the image has no pixels": "图像没有像素",
    "no ink found": "没有找到笔迹：图像是空白的，或数字太淡",
    "several digits": "有多个数字：请把照片裁剪到只含一个数字",
}


def bilingual(problem: str) -> str:
    """A skip reason with its Chinese translation appended ("… · 中文"), when REASONS_ZH knows it."""
    zh = next((zh for en, zh in REASONS_ZH.items() if en in problem), None)
    return f"{problem} · {zh}" if zh else problem


def _warn_skipped(where: str, problems: list[str]) -> None:
    if problems:
        lines = "\n  ".join(bilingual(p) for p in problems)
        warnings.warn(f"{len(problems)} skipped in {where} (跳过{len(problems)}项):\n  {lines}", SkippedFilesWarning,
                      stacklevel=3)


# ---------------------------------------------------------------- one file, and labelled folders


def load_digit(path: str | Path, name: str | None = None) -> np.ndarray:
    """Read an image file and preprocess it: an MNIST-style uint8 28×28 digit, or ImageProblem('<name>: <reason>')."""
    path = Path(path)
    name = name or path.name
    gray = read_image(path, name)
    try:
        return preprocess(gray)
    except ImageProblem as err:  # preprocess does not know the file: name it
        raise ImageProblem(f"{name}: {err}") from None


def image_files(folder: str | Path) -> tuple[list[Path], list[str]]:
    """Image files under a folder (recursively, sorted) and 'name: reason' for every other file found."""
    folder = Path(folder)
    files, skipped = [], []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = path.relative_to(folder).as_posix()
        if path.name.startswith(".") or path.name in IGNORED:
            continue
        if path.suffix.lower() in IMAGE_SUFFIXES:
            files.append(path)
        else:
            skipped.append(f"{name}: not an image file (extension {path.suffix or 'none'!r}), skipped")
    return files, skipped


@dataclass
class DigitFolder:
    """The images of a labelled folder (root/<digit>/<files>) to MNIST's conventions, and what was skipped."""

    x: np.ndarray  # uint8 (N, 28, 28)
    y: np.ndarray  # int64 (N,)
    files: list[str] = field(default_factory=list)  # relative to the root, e.g. '3/photo.jpg'
    problems: list[str] = field(default_factory=list)  # 'name: reason' for each skipped file or folder

    def __len__(self) -> int:
        return len(self.y)


OWN_ONLY_VARIABLE = "COURSE_OWN_DIGITS_ONLY"  # 1: Chapter 9 uses your own files alone, no synthetic example set
YES, NO = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


def own_only(flag: bool | None = None) -> bool:
    """Your own files alone? The argument when given, else $COURSE_OWN_DIGITS_ONLY (1/true/yes/on; unset: no)."""
    if flag is not None:
        return bool(flag)
    value = os.environ.get(OWN_ONLY_VARIABLE, "").strip().lower()
    if value not in YES + NO:
        raise ValueError(f"{OWN_ONLY_VARIABLE}={value!r} is neither on nor off; use one of {', '.join(YES)} "
                         f"(your own files alone) or {', '.join(NO[:-1])} or leave it empty (with the examples)")
    return value in YES


def load_folder(root: str | Path | None = None, warn: bool = True, own_only: bool = False) -> DigitFolder:
    """Read and preprocess root/<digit>/<images> (default data/custom); skip bad items with a warning naming each.

    own_only=True leaves the synthetic example files (synthetic_*) out: neither loaded nor counted.
    """
    root = Path(root) if root else custom_dir()
    mine = " of your own (synthetic_* left out)" if own_only else ""
    images, labels, names, problems = [], [], [], []
    if not root.is_dir():
        problems.append(f"{root.name}/: no such folder")
        children = []
    else:
        children = sorted(root.iterdir())
    for child in children:
        if child.name.startswith(".") or child.name in IGNORED:
            continue
        if child.is_file():
            problems.append(f"{child.name}: not inside a digit folder (0-9), skipped")
            continue
        if child.name not in tuple("0123456789"):
            problems.append(f"{child.name}/: folder name is not a digit 0-9, skipped")
            continue
        files, skipped = image_files(child)
        files = [path for path in files if not (own_only and is_synthetic(path.name))]
        problems += [f"{child.name}/{item}" for item in skipped]
        if not files:
            problems.append(f"{child.name}/: no images in this folder{mine}")
        for path in files:
            name = path.relative_to(root).as_posix()
            try:
                images.append(load_digit(path, name))
            except ImageProblem as err:
                problems.append(str(err))
                continue
            labels.append(int(child.name))
            names.append(name)
    if not images and root.is_dir():
        fix = f", or switch own_only off ({OWN_ONLY_VARIABLE}) to use the example set" if own_only else ""
        problems.append(f"{root.name}/: no usable images{mine}; put them in {root.name}/<digit>/ (e.g. "
                        f"{root.name}/7/a.png){fix}")
    if warn:
        _warn_skipped(f"{root.name}/", problems)
    x = np.stack(images) if images else np.zeros((0, 28, 28), np.uint8)
    return DigitFolder(x, np.array(labels, dtype=np.int64), names, problems)


def tree_fingerprint(root: str | Path) -> dict[str, tuple[int, int]]:
    """{relative path: (size, modification time in ns)} of every file under root: compare to prove nothing changed."""
    root = Path(root)
    return {p.relative_to(root).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------- a synthetic example set

EXAMPLE_README = """Your own handwritten digits for Chapter 9 (第9章 自定义数据集识别)
====================================================================

Put each image in the folder named after its digit: 0/, 1/, ... 9/ (PNG, JPEG, BMP, GIF, TIFF or WebP;
any size; colour or grayscale; dark ink on light paper or the other way round). One digit per image,
roughly cropped. A phone photo of a digit on paper works.

The files named synthetic_*.png / synthetic_*.jpg are NOT handwriting: the course rendered them from the
fonts that ship with matplotlib, with rotation, noise, blur, uneven light and JPEG artefacts, so that the
chapter runs before you add anything. The notebook reports your own images separately from them. It writes
a synthetic file again only where one is missing, and it never changes, overwrites or deletes any other file.
"""


def digit_fonts() -> list[Path]:
    """The TrueType fonts shipped with matplotlib that draw ordinary digits (DejaVu, STIX, Computer Modern)."""
    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    keep = ("DejaVuSans", "DejaVuSerif", "STIXGeneral", "cmr10", "cmss10", "cmtt10", "cmb10")
    return sorted(p for p in folder.glob("*.ttf") if p.stem.startswith(keep) and "Display" not in p.stem)


def render_digit(digit: int, rng: np.random.Generator, fonts: list[Path]) -> np.ndarray:
    """One synthetic photo of a printed digit: float grayscale in [0, 1], ink dark or light, noisy and uneven."""
    from scipy import ndimage as ndi

    height = int(rng.integers(40, 240))
    width = int(height * rng.uniform(0.7, 1.3))
    font = ImageFont.truetype(str(fonts[rng.integers(len(fonts))]), size=int(height * rng.uniform(0.5, 0.8)))
    glyph = Image.new("L", (width, height), 0)
    centre = (width * rng.uniform(0.4, 0.6), height * rng.uniform(0.4, 0.6))
    ImageDraw.Draw(glyph).text(centre, str(digit), fill=255, font=font, anchor="mm",
                               stroke_width=int(rng.integers(0, max(1, height // 30) + 1)), stroke_fill=255)
    glyph = glyph.rotate(rng.uniform(-15, 15), resample=Image.Resampling.BICUBIC, center=centre)
    mask = np.asarray(glyph, dtype=np.float32) / 255
    paper, ink = rng.uniform(0.7, 1.0), rng.uniform(0.0, 0.35)
    if rng.random() < 0.3:  # light ink on a dark ground: chalk on a board, a screenshot in dark mode
        paper, ink = 1 - paper, 1 - ink
    rows, cols = np.mgrid[0:height, 0:width] / max(height, width)
    angle = rng.uniform(0, 2 * np.pi)
    light = 1 - rng.uniform(0, 0.45) * (np.cos(angle) * cols + np.sin(angle) * rows)  # a shadow across the page
    image = (paper + (ink - paper) * mask) * light
    image = ndi.gaussian_filter(image, rng.uniform(0, 1.5) * height / 100)
    image = image + rng.normal(0, rng.uniform(0, 0.06), image.shape)
    return np.clip(image, 0, 1).astype(np.float32)


def save_example(image: np.ndarray, stem: Path, rng: np.random.Generator) -> Path | None:
    """Save in a random format (PNG L/RGB/RGBA/palette/16-bit or JPEG); None if a file of that name exists."""
    kind = ["L", "RGB", "RGBA", "P", "I;16", "JPEG"][rng.integers(6)]
    as_bytes = np.round(image * 255).astype(np.uint8)
    if kind == "RGB":  # tinted paper, as from a phone camera
        tint = rng.uniform(0.85, 1.0, 3)
        picture = Image.fromarray(np.round(image[..., None] * tint * 255).astype(np.uint8))
    elif kind == "RGBA":  # a drawing app's export: dark ink whose alpha is the ink, over a transparent ground
        alpha = np.round((1 - image) * 255).astype(np.uint8)
        picture = Image.fromarray(np.dstack([np.zeros_like(alpha)] * 3 + [alpha]))
    elif kind == "P":
        picture = Image.fromarray(as_bytes).convert("RGB").quantize(16)
    elif kind == "I;16":
        picture = Image.fromarray(np.round(image * 65535).astype(np.uint16))
    else:
        picture = Image.fromarray(as_bytes)
    path = stem.with_suffix(".jpg" if kind == "JPEG" else ".png")
    try:
        with open(path, "xb") as out:  # "x": fail rather than overwrite a file that appeared meanwhile
            if kind == "JPEG":
                picture.save(out, "JPEG", quality=int(rng.integers(15, 60)))
            else:
                picture.save(out, "PNG")
    except FileExistsError:
        return None
    return path


def make_example_set(root: str | Path | None = None, per_digit: int = 100, seed: int = 0) -> int:
    """Write synthetic_<digit>_<i> images into root/<digit>/ (default data/custom) where missing; return how many.

    Deterministic (the same files on every machine) and additive: existing files are never overwritten or deleted.
    """
    root = Path(root) if root else custom_dir()
    root.mkdir(parents=True, exist_ok=True)
    readme = root / "README.txt"
    if not readme.exists():
        readme.write_text(EXAMPLE_README, encoding="utf-8")
    fonts, written = digit_fonts(), 0
    for digit in range(10):
        folder = root / str(digit)
        folder.mkdir(exist_ok=True)
        for i in range(per_digit):
            stem = folder / f"synthetic_{digit}_{i:03d}"
            if stem.with_suffix(".png").exists() or stem.with_suffix(".jpg").exists():
                continue
            rng = np.random.default_rng([seed, digit, i])
            written += save_example(render_digit(digit, rng, fonts), stem, rng) is not None
    return written


def is_synthetic(name: str) -> bool:
    """True for the course's generated example files (synthetic_*), False for the reader's own."""
    return Path(name).name.startswith("synthetic_")


# ---------------------------------------------------------------- UCI optical digits (bundled with scikit-learn)


def uci_bitmap(counts: np.ndarray) -> np.ndarray:
    """Undo UCI's 4×4 block counting as far as possible: 8×8 counts (0..16) to an anti-aliased 32×32 bitmap."""
    coverage = resize(np.asarray(counts, dtype=np.float32) / 16, 32, 32)  # bicubic: ink fraction per pixel
    return np.clip((coverage - 0.35) / 0.3, 0, 1)  # half covered = ink; a ramp keeps the edges soft


def load_uci_digits(mnist_style: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's UCI optical digits (1,797 images by 13 writers): (x, y); x uint8 (N, 28, 28) MNIST-style,
    or the raw 8×8 counts 0..16 with mnist_style=False."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    y = digits.target.astype(np.int64)
    if not mnist_style:
        return digits.images.astype(np.uint8), y
    return np.stack([preprocess(uci_bitmap(image)) for image in digits.images]), y


# ---------------------------------------------------------------- data checks


def near_duplicates(x: np.ndarray, threshold: float = 0.98) -> list[tuple[int, int, float]]:
    """Pairs (i, j, similarity) of images whose cosine similarity is at least `threshold`, most similar first."""
    flat = x.reshape(len(x), -1).astype(np.float32)
    flat /= np.maximum(np.linalg.norm(flat, axis=1, keepdims=True), 1e-12)
    pairs = []
    for start in range(0, len(flat), 1000):  # blocks keep the similarity matrix small
        sims = flat[start:start + 1000] @ flat.T
        rows, cols = np.nonzero(sims >= threshold)
        pairs += [(start + i, j, float(sims[i, j])) for i, j in zip(rows, cols, strict=True) if start + i < j]
    return sorted(pairs, key=lambda p: -p[2])


def own_split(folder: DigitFolder, held_out: float = 0.3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) indices of a folder's images: about `held_out` of each digit held out, at least one of every
    digit with two distinct images; near-duplicates (and chains of them) stay together on one side. Deterministic."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if not 0 < held_out < 1:
        raise ValueError(f"held_out={held_out} must be a fraction between 0 and 1, e.g. 0.3")
    n = len(folder)
    pairs = np.array([(i, j) for i, j, _ in near_duplicates(folder.x)] if n else [], dtype=np.int64).reshape(-1, 2)
    groups = connected_components(coo_matrix((np.ones(len(pairs)), pairs.T), shape=(n, n)), directed=False)[1]
    _, first = np.unique(groups, return_index=True)  # groups are numbered 0, 1, ...; first: each one's first image
    held = np.zeros(n, bool)
    for digit in range(10):
        ours = np.flatnonzero(folder.y[first] == digit)  # a group counts for its first image's digit
        target, count = max(1, round(held_out * np.isin(groups, ours).sum())), 0
        for group in np.random.default_rng([seed, digit]).permutation(ours)[:-1]:  # the last group always trains
            if count >= target:
                break
            held[groups == group] = True
            count += np.sum(groups == group)
    return np.flatnonzero(~held), np.flatnonzero(held)


def suspicious_labels(probabilities: np.ndarray, labels: np.ndarray, confidence: float = 0.9) -> np.ndarray:
    """Indices where the model predicts another class than the label with at least `confidence`, surest first."""
    predicted, top = probabilities.argmax(1), probabilities.max(1)
    flagged = np.flatnonzero((predicted != labels) & (top >= confidence))
    return flagged[np.argsort(-top[flagged], kind="stable")]


# ---------------------------------------------------------------- predictions for any files


@dataclass
class Prediction:
    """One file's prediction: the digit, its probabilities and the 28×28 image the model saw, or the problem."""

    file: str
    digit: int | None = None
    probabilities: np.ndarray | None = None
    image: np.ndarray | None = None
    problem: str | None = None

    @property
    def confidence(self) -> float:
        """The probability of the predicted digit (0 when the file could not be read)."""
        return float(self.probabilities.max()) if self.probabilities is not None else 0.0


def model_probabilities(model: Any, x: np.ndarray) -> np.ndarray:
    """Class probabilities (N, 10) for MNIST-style uint8 images from a PyTorch or Keras model, or a function."""
    if len(x) == 0:
        return np.zeros((0, 10), np.float32)
    if hasattr(model, "parameters") and hasattr(model, "forward"):  # a PyTorch module: normalised (N, 1, 28, 28)
        import torch

        from .train import predict_proba

        return predict_proba(model, torch.from_numpy(normalize(x)).unsqueeze(1))
    if hasattr(model, "predict"):  # a Keras model: normalised (N, 28, 28, 1), softmax outputs
        return np.asarray(model.predict(normalize(x)[..., None], verbose=0))
    return np.asarray(model(x))


def input_files(source: str | Path | Iterable[str | Path]) -> tuple[list[tuple[Path, str]], list[str]]:
    """(path, display name) of the image files named by a file, a folder or a list of both; plus skipped items."""
    items = [source] if isinstance(source, str | Path) else list(source)
    found, skipped = [], []
    for item in map(Path, items):
        if item.is_dir():
            files, others = image_files(item)
            found += [(p, f"{item.name}/{p.relative_to(item).as_posix()}") for p in files]
            skipped += [f"{item.name}/{s}" for s in others]
            if not files:
                skipped.append(f"{item.name}/: no image files in this folder")
        else:
            found.append((item, item.name))
    return found, skipped


def predict_files(model: Any, source: str | Path | Iterable[str | Path], figure: bool = True,
                  warn: bool = True) -> tuple[list[Prediction], Any]:
    """Predict the digit in each image file (a file, a folder or a list): (predictions, figure of what the model saw).

    Any size and mode; a file that cannot be used gets a Prediction with `.problem` set and never stops the rest.
    """
    found, skipped = input_files(source)
    predictions = []
    for path, name in found:
        try:
            predictions.append(Prediction(name, image=load_digit(path, name)))
        except ImageProblem as err:
            predictions.append(Prediction(name, problem=str(err)))
    readable = [p for p in predictions if p.problem is None]
    probabilities = model_probabilities(model, np.stack([p.image for p in readable]) if readable else np.zeros(0))
    for p, probs in zip(readable, probabilities, strict=True):
        p.digit, p.probabilities = int(probs.argmax()), probs
    if warn:
        _warn_skipped("the input", skipped + [p.problem for p in predictions if p.problem])
    return predictions, (show_predictions(predictions) if figure and readable else None)


def show_predictions(predictions: list[Prediction], ncols: int = 8, size: float = 1.1):
    """The readable inputs as the model saw them (28×28), titled with the predicted digit and its probability."""
    import matplotlib.pyplot as plt

    shown = [p for p in predictions if p.image is not None]
    nrows = max(1, -(-len(shown) // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * (size + 0.35)), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, p in zip(axes.flat, shown, strict=False):
        ax.imshow(p.image, cmap="gray_r", vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(f"{p.digit} ({p.confidence:.0%})", fontsize=9, pad=2)
        ax.text(0.5, -0.08, Path(p.file).name[:16], transform=ax.transAxes, ha="center", va="top", fontsize=6)
    fig.suptitle("What the model saw, and what it read", fontsize=11)
    return fig


def prediction_table(predictions: list[Prediction]) -> str:
    """A plain-text table: file, predicted digit, probability, top-2 digits, or the problem."""
    width = max([len(p.file) for p in predictions] + [4])
    lines = [f"{'file':<{width}}  digit   prob.  runner-up"]
    for p in predictions:
        if p.problem:
            lines.append(f"{p.file:<{width}}  -           -  {p.problem.removeprefix(p.file + ': ')}")
            continue
        second = int(np.argsort(p.probabilities)[-2])
        lines.append(f"{p.file:<{width}}  {p.digit:<5}  {p.confidence:6.1%}  {second} ({p.probabilities[second]:.1%})")
    return "\n".join(lines)
