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


def ink_on_black(gray: np.ndarray, small: int = 64) -> tuple[np.ndarray, bool]:
    """MNIST's polarity, bright ink on black: invert when the strongest departures from the paper nearby are dark."""
    scale = min(1.0, small / max(gray.shape))
    thumb = resize(gray, max(1, round(gray.shape[0] * scale)), max(1, round(gray.shape[1] * scale)))
    if scale < 1:  # a photo: the paper nearby, lit or in shadow, is the median of a window around each pixel
        papers = [ndi.median_filter(thumb, size=size, mode="nearest") for size in (15, 31)]
    else:  # a small image (MNIST's, UCI's), where ink may fill a third of the frame: the whole image's median
        papers = [np.median(thumb)]
    # > 0 when the darkest departures outweigh the brightest; the edge of a shadow or a desk departs both ways alike
    votes = [-np.percentile(thumb - paper, 1) - np.percentile(thumb - paper, 99) for paper in papers]
    inverted = bool(max(votes, key=abs) > 0)  # the window whose verdict is clearer decides
    return (1 - gray if inverted else gray), inverted


def smooth(ink: np.ndarray, per_pixel: float = 1 / 256) -> np.ndarray:
    """Average away sensor noise and JPEG blocks: a Gaussian blur, 1/256 of the longest side (none at MNIST's size)."""
    sigma = max(ink.shape) * per_pixel
    return ndi.gaussian_filter(ink, sigma) if sigma >= 0.5 else ink


def flatten_background(ink: np.ndarray, share: float = 0.15) -> np.ndarray:
    """Remove uneven light, shadows and desks: divide the photo by the paper's brightness, estimated by a closing."""
    size = max(31, int(max(ink.shape) * share)) | 1  # wider than a pen stroke; all of a small image
    light = 1 - ink  # back to the photo: bright paper, dark ink
    paper = ndi.grey_closing(ndi.median_filter(light, size=3), size=(size, size))  # the median: noise is no paper
    return np.clip(1 - light / np.maximum(paper, 1e-3), 0, 1).astype(np.float32)  # ink's share of the light


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


def clear_border(ink: np.ndarray, margin: float = 0.05) -> np.ndarray:
    """Drop ink touching the photo's edge (a desk, a shadow's edge) when the rest stands clear of every edge."""
    labels, _ = ndi.label(ink > 0, structure=np.ones((3, 3)))
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    free = (labels > 0) & ~np.isin(labels, edge)
    if not free.any():
        return ink  # cropped to the digit: all the ink touches the edge, and it is the digit
    rows, cols = np.flatnonzero(free.any(axis=1)), np.flatnonzero(free.any(axis=0))
    height, width = ink.shape
    clear = (min(rows[0], height - 1 - rows[-1]) >= margin * height
             and min(cols[0], width - 1 - cols[-1]) >= margin * width)
    return np.where(free, ink, 0).astype(np.float32) if clear else ink


def marks(ink: np.ndarray, gap: float = 0.15, share: float = 0.3, floor: float = 0.05) -> int:
    """How many separate marks stand side by side: runs of inked columns between gaps wider than gap × height."""
    column = ink.sum(axis=0)
    column = np.where(column >= floor * column.max(), column, 0)  # a printed line under the marks is not ink
    height = np.flatnonzero(ink.any(axis=1)).size
    runs, empty = [], np.inf
    for value in column:
        if value > 0:
            if empty > gap * height:
                runs.append(0.0)  # a new mark starts after a wide enough gap
            runs[-1] += value
            empty = 0
        else:
            empty += 1
    return sum(run >= share * max(runs) for run in runs)  # a speck beside a digit is no second mark


def one_digit(ink: np.ndarray) -> np.ndarray:
    """The ink unchanged if it is one digit; ImageProblem if it is several marks side by side."""
    count = marks(ink)
    if count > 1:
        raise ImageProblem(f"several digits: {count} separate marks side by side; crop the photo to one digit")
    return ink


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
    steps["edges cleared"] = clear_border(steps["thresholded"])
    steps["cropped"] = one_digit(crop_to_ink(steps["edges cleared"]))
    steps["thick enough"] = thicken(steps["cropped"])
    steps["20×20 box"] = fit_box(crop_to_ink(steps["thick enough"]))  # cropped again: thicken pads the image
    steps["28×28, centred"] = centre_by_mass(steps["20×20 box"])
    return steps


def preprocess(gray: np.ndarray) -> np.ndarray:
    """A grayscale image (float in [0, 1] or uint8, any size) to an MNIST-style uint8 28×28 digit."""
    gray = np.asarray(gray)
    gray = gray / 255.0 if gray.dtype == np.uint8 else gray.astype(np.float32)
    return np.round(preprocess_steps(gray)["28×28, centred"] * 255).astype(np.uint8)
