"""Digit images from any file: safe reading (any size, any mode, damaged or hostile files), resizing, figures.

Plumbing for Chapter 9, which writes MNIST's preprocessing recipe itself (saved as helpers.saved.ch09):

    gray = read_image("my_seven.jpg")        # float32 grayscale in [0, 1], or ImageProblem('<name>: <reason>')
    small = resize(gray, 28, 28)              # area averaging when shrinking, bicubic when enlarging

`helpers.load_digit(path)` (helpers.custom) reads a file and runs Chapter 9's `preprocess` on it.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PIXELS = 40_000_000  # refuse bigger images before decoding them: a guard against decompression bombs
DRAFT_SIZE = 1024  # big JPEGs are decoded at 1/2, 1/4 or 1/8 size, never below this (twice Chapter 9's WORK_SIZE)
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
                    image.draft("L", (DRAFT_SIZE, DRAFT_SIZE))  # decode big JPEGs at 1/2, 1/4 or 1/8 size
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


# ---------------------------------------------------------------- resizing and figures


def resize(gray: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a float image: area averaging when shrinking, bicubic when enlarging."""
    if (height, width) == gray.shape:
        return gray.astype(np.float32)
    shrinking = height < gray.shape[0] or width < gray.shape[1]
    method = Image.Resampling.BOX if shrinking else Image.Resampling.BICUBIC
    out = Image.fromarray(gray.astype(np.float32)).resize((width, height), method)
    return np.clip(np.asarray(out, dtype=np.float32), 0, 1)


def show_steps(examples: list[dict[str, np.ndarray]], size: float = 0.95):
    """A grid of before/after images: one row per example ({step name: image in [0, 1]}), one column per step."""
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
