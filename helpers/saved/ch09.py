"""The code Chapter 9 teaches, saved for later chapters (第9章 项目实战：自定义数据集识别).

Generated from notebooks/ch09_custom_dataset.ipynb (its cells tagged `save`) by scripts/save_helpers.py.
Do not edit: change the notebook, then run `make helpers`.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from helpers.images import ImageProblem, resize

BOX, FRAME = 20, 28  # MNIST: the digit's longer side is 20 pixels (9,997 of 10,000; 9.1.3), in a 28×28 frame
CENTRE = 14.0  # MNIST's centre of mass: row 14, column 14 (pixel indices; measured in 9.1.3)
WORK_SIZE = 512  # larger images are reduced to this longest side before cleaning (faster, and it averages noise)
MIN_STROKE, TARGET_STROKE = 0.9, 1.8  # stroke widths in pixels of the 20-px box: MNIST's thinnest, a typical one


def to_working_size(gray: np.ndarray, largest: int = WORK_SIZE, smallest: int = BOX) -> np.ndarray:
    """Shrink images whose longest side exceeds `largest`; enlarge those smaller than the 20-px box."""
    long_side = max(gray.shape)
    if long_side > largest:
        scale = largest / long_side
    elif long_side < smallest:
        scale = float(np.ceil(2 * smallest / long_side))  # e.g. 8×8 UCI digits: ×5 to 40×40
    else:
        return gray.astype(np.float32)
    return resize(gray, max(1, round(gray.shape[0] * scale)), max(1, round(gray.shape[1] * scale)))


def ink_on_black(gray: np.ndarray) -> tuple[np.ndarray, bool]:
    """MNIST's polarity, bright ink on black: invert when the background (the border's median) is the bright end."""
    band = max(1, min(gray.shape) // 20)  # the outer 5% of each side
    border = np.concatenate([gray[:band].ravel(), gray[-band:].ravel(), gray[:, :band].ravel(),
                             gray[:, -band:].ravel()])
    low, high = np.percentile(gray, [0.01, 99.99])  # nearly the extremes: thin pen lines are few pixels
    inverted = bool(np.median(border) > (low + high) / 2)
    return (1 - gray if inverted else gray), inverted


def smooth(ink: np.ndarray, per_pixel: float = 1 / 256) -> np.ndarray:
    """Average away sensor noise and JPEG blocks: a Gaussian blur, 1/256 of the longest side (none at MNIST's size)."""
    sigma = max(ink.shape) * per_pixel
    return ndi.gaussian_filter(ink, sigma) if sigma >= 0.5 else ink


def flatten_background(ink: np.ndarray, rounds: int = 3) -> np.ndarray:
    """Remove uneven light: subtract a smooth surface (quadratic in row and column) fitted to the background."""
    height, width = ink.shape
    rows, cols = np.meshgrid(np.arange(height) / height - 0.5, np.arange(width) / width - 0.5, indexing="ij")
    terms = [np.ones_like(rows), rows, cols, rows * rows, rows * cols, cols * cols]
    step = max(1, max(height, width) // 64)  # fit on a grid of at most 64×64 pixels
    design = np.stack([t[::step, ::step].ravel() for t in terms], axis=1)  # (pixels, 6)
    values = ink[::step, ::step].ravel().astype(np.float64)
    keep = values <= np.median(values)  # start from the darker half: background, not ink
    for _ in range(rounds):  # least squares via the 6×6 normal equations (lstsq's threads crawl on a busy CPU)
        fit = design[keep]
        gram = np.einsum("ni,nj->ij", fit, fit) + 1e-9 * np.eye(6)  # the tiny ridge copes with 1-pixel-high images
        coef = np.linalg.solve(gram, np.einsum("ni,n->i", fit, values[keep]))
        residual = values - np.einsum("ni,i->n", design, coef)
        keep = residual <= np.median(residual)  # refit to the pixels closest below the surface
    background = sum(k * t for k, t in zip(coef, terms, strict=True))
    return np.clip(ink - background, 0, 1).astype(np.float32)


def threshold(ink: np.ndarray, min_contrast: float = 0.15, strong: float = 0.5, speck: float = 0.05) -> np.ndarray:
    """Keep only real ink: pixels above the noise, in blobs with strong ink that are no specks; ink made white."""
    median = np.median(ink)
    noise = 1.4826 * np.median(np.abs(ink - median))  # robust standard deviation (the background is the majority)
    level = np.percentile(ink, 99.5)  # the brightest ink, robust to a few hot pixels
    if level - median < min_contrast:
        return np.zeros_like(ink)
    cut = max(median + 4 * noise, 0.15 * level)
    clean = np.where(ink > cut, np.clip(ink / level, 0, 1), 0).astype(np.float32)
    labels, count = ndi.label(clean > 0, structure=np.ones((3, 3)))  # connected blobs, diagonals included
    if count:
        index = np.arange(1, count + 1)
        areas = ndi.sum_labels(np.ones_like(clean), labels, index=index)
        peaks = ndi.maximum(clean, labels, index=index)
        real = (peaks >= strong) & (areas >= max(2, speck * areas[peaks >= strong].max(initial=0)))
        clean[~np.concatenate([[False], real])[labels]] = 0  # label 0 is the background
    return clean


def crop_to_ink(ink: np.ndarray, min_pixels: int = 4) -> np.ndarray:
    """The bounding box of the ink; raises ImageProblem for an image with (almost) no ink."""
    mask = ink > 0
    if mask.sum() < min_pixels:
        raise ImageProblem("no ink found: the image is blank, or the digit is too faint to tell from the background")
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def stroke_width(ink: np.ndarray) -> float:
    """Average stroke width in pixels: ink area over half the outline length (a stroke of width w, length L)."""
    mask = ink >= 0.5
    padded = np.pad(mask, 1)
    edges = (padded[1:] != padded[:-1]).sum() + (padded[:, 1:] != padded[:, :-1]).sum()  # outline length, pixels
    return float(2 * ink.sum() / edges) if edges else 0.0


def thicken(ink: np.ndarray, box: int = BOX) -> np.ndarray:
    """Widen strokes that would be thinner than MNIST's (pen lines in a big photo) once scaled to the 20-px box."""
    scale = box / max(ink.shape)
    width = stroke_width(ink) * scale
    if width >= MIN_STROKE:
        return ink
    radius = max(1, round((TARGET_STROKE - width) / (2 * scale)))  # pixels to add on each side
    cross = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool)
    out = np.pad(ink, radius)
    for i in range(radius):  # alternating a cross and a square grows a near-round octagon, one pixel per pass
        out = ndi.grey_dilation(out, footprint=cross if i % 2 == 0 else np.ones((3, 3), bool))
    return out


def fit_box(ink: np.ndarray, box: int = BOX) -> np.ndarray:
    """Scale so the longer side is exactly `box` pixels, keeping the aspect ratio; ink stretched back to full white."""
    height, width = ink.shape
    scale = box / max(height, width)
    out = resize(ink, max(1, round(height * scale)), max(1, round(width * scale)))
    return np.clip(out / out.max(), 0, 1) if out.max() > 0 else out


def centre_by_mass(ink: np.ndarray, frame: int = FRAME, centre: float = CENTRE) -> np.ndarray:
    """Place the digit in a frame×frame image, its centre of mass at (centre, centre) to the pixel, none cut off."""
    rows, cols = np.indices(ink.shape)
    row, col = (rows * ink).sum() / ink.sum(), (cols * ink).sum() / ink.sum()  # the ink-weighted mean position
    top = int(np.clip(round(centre - row), 0, frame - ink.shape[0]))  # clipped: a digit is never cut off
    left = int(np.clip(round(centre - col), 0, frame - ink.shape[1]))
    out = np.zeros((frame, frame), np.float32)
    out[top:top + ink.shape[0], left:left + ink.shape[1]] = ink
    return out


def preprocess_steps(gray: np.ndarray) -> dict[str, np.ndarray]:
    """Every intermediate image of `preprocess`, by step name (for before/after figures)."""
    steps = {"input": gray}
    steps["working size"] = to_working_size(gray)
    steps["ink on black"], _ = ink_on_black(steps["working size"])
    steps["smoothed"] = smooth(steps["ink on black"])
    steps["even light"] = flatten_background(steps["smoothed"])
    steps["thresholded"] = threshold(steps["even light"])
    steps["cropped"] = crop_to_ink(steps["thresholded"])
    steps["thick enough"] = thicken(steps["cropped"])
    steps["20×20 box"] = fit_box(crop_to_ink(steps["thick enough"]))  # cropped again: thicken pads the image
    steps["28×28, centred"] = centre_by_mass(steps["20×20 box"])
    return steps


def preprocess(gray: np.ndarray) -> np.ndarray:
    """A grayscale image (float in [0, 1] or uint8, any size) to an MNIST-style uint8 28×28 digit."""
    gray = np.asarray(gray)
    gray = gray / 255.0 if gray.dtype == np.uint8 else gray.astype(np.float32)
    return np.round(preprocess_steps(gray)["28×28, centred"] * 255).astype(np.uint8)
