"""Digit images from anywhere to MNIST's conventions: safe reading of any file, and the cleaning steps one by one.

MNIST's own recipe (LeCun et al., 1998): white ink on black, the digit scaled to fit a 20×20 box keeping its
aspect ratio, then placed in a 28×28 frame with its centre of mass at the centre. `preprocess()` repeats it for
any image file (any size, any mode), after cleaning: grayscale, polarity, uneven light, noise, specks, thin strokes.

    x = preprocess(read_image("my_seven.jpg"))          # uint8 (28, 28), like an MNIST image
    x = load_digit("my_seven.jpg")                      # the same in one call

SciPy is imported inside the functions that use it (it takes half a second), so `import helpers` stays fast.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

BOX, FRAME = 20, 28  # MNIST: the digit fits a 20×20 box inside a 28×28 frame
CENTRE = 14.0  # MNIST puts the centre of mass at row 14, column 14 (pixel indices; measured in Chapter 9)
WORK_SIZE = 512  # larger images are reduced to this longest side before cleaning (faster, and it averages noise)
MAX_PIXELS = 40_000_000  # refuse bigger images before decoding them: a guard against decompression bombs
MIN_STROKE, TARGET_STROKE = 0.9, 1.8  # stroke width in 20-px-box pixels: MNIST's 0.1th percentile and its median
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


class ImageProblem(ValueError):
    """A file that cannot be used as a digit image; the message names the file and the reason."""


# ---------------------------------------------------------------- reading any image safely


def to_gray(image: Image.Image) -> np.ndarray:
    """Any Pillow image mode as float32 grayscale in [0, 1] (0 = black); transparency is laid over white."""
    if image.mode.startswith("I") or image.mode == "F":  # 16- and 32-bit integers, floats
        values = np.asarray(image, dtype=np.float32)
        top = 1.0 if image.mode == "F" and values.max() <= 1 else 255.0 if values.max() <= 255 else 65535.0
        return np.clip(values / top, 0, 1)  # 8-bit values in a 16-bit file are read as 8-bit
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    return np.asarray(image.convert("L"), dtype=np.float32) / 255


def read_image(path: str | Path, name: str | None = None, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """An image file as float32 grayscale in [0, 1]; ImageProblem('<name>: <reason>') if it cannot be used."""
    path = Path(path)
    name = name or path.name
    if not path.is_file():
        raise ImageProblem(f"{name}: no such file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise ImageProblem(f"{name}: {width}×{height} pixels ({width * height / 1e6:.0f} megapixels) is "
                                       f"over the {max_pixels / 1e6:.0f}-megapixel limit that guards against "
                                       "decompression bombs; scale the image down")
                if image.format == "JPEG":
                    image.draft("L", (2 * WORK_SIZE, 2 * WORK_SIZE))  # decode big JPEGs at 1/2, 1/4 or 1/8 size
                image.load()
                image = ImageOps.exif_transpose(image)  # phone photos: apply the camera's rotation
                gray = to_gray(image)
    except ImageProblem:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageProblem(f"{name}: refused as a possible decompression bomb ({err})") from None
    except UnidentifiedImageError:
        raise ImageProblem(f"{name}: not an image Pillow can read (wrong extension, or not an image at all)") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageProblem(f"{name}: damaged or truncated image file ({err})") from None
    if gray.size == 0:
        raise ImageProblem(f"{name}: the image has no pixels")
    return gray


# ---------------------------------------------------------------- MNIST's steps, one function each


def _resize(gray: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a float image: area averaging when shrinking, bicubic when enlarging."""
    if (height, width) == gray.shape:
        return gray.astype(np.float32)
    shrinking = height < gray.shape[0] or width < gray.shape[1]
    method = Image.Resampling.BOX if shrinking else Image.Resampling.BICUBIC
    out = Image.fromarray(gray.astype(np.float32)).resize((width, height), method)
    return np.clip(np.asarray(out, dtype=np.float32), 0, 1)


def to_working_size(gray: np.ndarray, largest: int = WORK_SIZE, smallest: int = BOX) -> np.ndarray:
    """Shrink images whose longest side exceeds `largest`; enlarge those smaller than the 20-px box."""
    long_side = max(gray.shape)
    if long_side > largest:
        scale = largest / long_side
    elif long_side < smallest:
        scale = float(np.ceil(2 * smallest / long_side))  # e.g. 8×8 UCI digits: ×5 to 40×40
    else:
        return gray.astype(np.float32)
    return _resize(gray, max(1, round(gray.shape[0] * scale)), max(1, round(gray.shape[1] * scale)))


def ink_on_black(gray: np.ndarray) -> tuple[np.ndarray, bool]:
    """MNIST's polarity, bright ink on black: invert when the background (the border's median) is the bright end."""
    band = max(1, min(gray.shape) // 20)
    border = np.concatenate([gray[:band].ravel(), gray[-band:].ravel(), gray[:, :band].ravel(),
                             gray[:, -band:].ravel()])
    low, high = np.percentile(gray, [0.01, 99.99])  # nearly the extremes: thin pen lines are few pixels
    inverted = bool(np.median(border) > (low + high) / 2)
    return (1 - gray if inverted else gray), inverted


def smooth(ink: np.ndarray, per_pixel: float = 1 / 256) -> np.ndarray:
    """Average away sensor noise and JPEG blocks: a Gaussian blur, 1/256 of the longest side (none at MNIST's size)."""
    from scipy import ndimage as ndi

    sigma = max(ink.shape) * per_pixel
    return ndi.gaussian_filter(ink, sigma) if sigma >= 0.5 else ink


def flatten_background(ink: np.ndarray, rounds: int = 3) -> np.ndarray:
    """Remove uneven light: subtract a smooth surface (quadratic in row and column) fitted to the background.

    Light changes slowly across a page, so a quadratic describes a shadow or a lamp's falloff. The fit starts
    from the darker half of the pixels (ink is bright now) and is refitted to the pixels closest below it; a grid
    of at most 64×64 pixels is enough to fit six numbers.
    """
    height, width = ink.shape
    rows, cols = np.meshgrid(np.arange(height) / height - 0.5, np.arange(width) / width - 0.5, indexing="ij")
    terms = [np.ones_like(rows), rows, cols, rows * rows, rows * cols, cols * cols]
    step = max(1, max(height, width) // 64)
    design = np.stack([t[::step, ::step].ravel() for t in terms], axis=1)
    values = ink[::step, ::step].ravel().astype(np.float64)
    keep = values <= np.median(values)
    for _ in range(rounds):  # least squares via the 6×6 normal equations (lstsq's threads crawl on a busy CPU)
        fit = design[keep]
        gram = np.einsum("ni,nj->ij", fit, fit) + 1e-9 * np.eye(6)  # the tiny ridge copes with 1-pixel-high images
        coef = np.linalg.solve(gram, np.einsum("ni,n->i", fit, values[keep]))
        residual = values - np.einsum("ni,i->n", design, coef)
        keep = residual <= np.median(residual)
    background = sum(k * t for k, t in zip(coef, terms, strict=True))
    return np.clip(ink - background, 0, 1).astype(np.float32)


def threshold(ink: np.ndarray, min_contrast: float = 0.15, strong: float = 0.5, speck: float = 0.05) -> np.ndarray:
    """Keep only real ink: pixels above the noise, in blobs that hold strong ink and are no specks; stretched to white.

    Hysteresis: a connected blob counts as ink only if some of its pixels reach `strong` × the brightest ink, so
    faint leftovers of shadows and noise go while the digit keeps its soft, anti-aliased edges.
    """
    from scipy import ndimage as ndi

    median = np.median(ink)
    noise = 1.4826 * np.median(np.abs(ink - median))  # robust standard deviation (the background is the majority)
    level = np.percentile(ink, 99.5)  # the brightest ink, robust to a few hot pixels
    if level - median < min_contrast:
        return np.zeros_like(ink)
    cut = max(median + 4 * noise, 0.15 * level)
    clean = np.where(ink > cut, np.clip(ink / level, 0, 1), 0).astype(np.float32)
    labels, count = ndi.label(clean > 0, structure=np.ones((3, 3)))
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
    """Average stroke width in pixels: ink mass over half the outline length (a stroke of width w, length L)."""
    mask = ink >= 0.5
    padded = np.pad(mask, 1)
    edges = (padded[1:] != padded[:-1]).sum() + (padded[:, 1:] != padded[:, :-1]).sum()
    return float(2 * ink.sum() / edges) if edges else 0.0


def thicken(ink: np.ndarray, box: int = BOX) -> np.ndarray:
    """Widen strokes that would be thinner than MNIST's (pen lines in a big photo) once scaled to the 20-px box."""
    from scipy import ndimage as ndi

    scale = box / max(ink.shape)
    width = stroke_width(ink) * scale
    if width >= MIN_STROKE:
        return ink
    radius = max(1, round((TARGET_STROKE - width) / (2 * scale)))
    cross = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool)
    out = np.pad(ink, radius)
    for i in range(radius):  # alternating a cross and a square grows a near-round octagon, one pixel per pass
        out = ndi.grey_dilation(out, footprint=cross if i % 2 == 0 else np.ones((3, 3), bool))
    return out


def fit_box(ink: np.ndarray, box: int = BOX) -> np.ndarray:
    """Scale so the longer side is exactly `box` pixels, keeping the aspect ratio; ink stretched back to full white."""
    height, width = ink.shape
    scale = box / max(height, width)
    out = _resize(ink, max(1, round(height * scale)), max(1, round(width * scale)))
    return np.clip(out / out.max(), 0, 1) if out.max() > 0 else out


def centre_by_mass(ink: np.ndarray, frame: int = FRAME, centre: float = CENTRE) -> np.ndarray:
    """Place the digit in a frame×frame image, its centre of mass at (centre, centre) to the pixel, none cut off."""
    from scipy import ndimage as ndi

    height, width = ink.shape
    row, col = ndi.center_of_mass(ink)
    top = int(np.clip(round(centre - row), 0, frame - height))
    left = int(np.clip(round(centre - col), 0, frame - width))
    out = np.zeros((frame, frame), dtype=np.float32)
    out[top:top + height, left:left + width] = ink
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
    steps["20×20 box"] = fit_box(crop_to_ink(steps["thick enough"]))
    steps["28×28, centred"] = centre_by_mass(steps["20×20 box"])
    return steps


def preprocess(gray: np.ndarray) -> np.ndarray:
    """A grayscale image (float in [0, 1] or uint8, any size) to an MNIST-style uint8 28×28 digit."""
    gray = np.asarray(gray)
    gray = gray / 255.0 if gray.dtype == np.uint8 else gray.astype(np.float32)
    return np.round(preprocess_steps(gray)["28×28, centred"] * 255).astype(np.uint8)


def load_digit(path: str | Path, name: str | None = None) -> np.ndarray:
    """Read an image file and preprocess it: an MNIST-style uint8 28×28 digit, or ImageProblem('<name>: <reason>')."""
    path = Path(path)
    name = name or path.name
    gray = read_image(path, name)
    try:
        return preprocess(gray)
    except ImageProblem as err:
        raise ImageProblem(f"{name}: {err}") from None


def show_steps(examples: list[dict[str, np.ndarray]], size: float = 0.95):
    """A grid of before/after images: one row per example, one column per preprocessing step."""
    import matplotlib.pyplot as plt

    names = list(examples[0])
    fig, axes = plt.subplots(len(examples), len(names), figsize=(len(names) * size, len(examples) * size + 0.4),
                             squeeze=False)
    for row, steps in zip(axes, examples, strict=True):
        for ax, name in zip(row, names, strict=True):
            ax.imshow(steps[name], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
    for ax, name in zip(axes[0], names, strict=True):
        ax.set_title(name, fontsize=8)
    return fig
