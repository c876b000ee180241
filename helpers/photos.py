"""Photo-like digit images: MNIST test digits as pen ink on paper, photographed the way people do (Chapter 9).

A test set for preprocessing, made here so that it can be shipped and regenerated (MNIST's licence, CC BY-SA 3.0):

    rgb = photo(digit, "shadow", np.random.default_rng(0))   # uint8 (height, width, 3), a JPEG-like phone photo
    cases = photo_set(x_test, y_test, per_artefact=20)        # [(artefact, label, rgb), …] for every artefact
    page = negative("two digits", x_test, np.random.default_rng(0))  # a page that holds no single digit

Each artefact is one thing that goes wrong in real photos; "all at once" combines them. The ink is MNIST's own
stroke, scaled up and sharpened like a ballpoint or felt-pen line, so the label is known and the digit is not in
MNIST's training set.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from scipy import ndimage as ndi

ARTEFACTS = ("clean", "desk edge", "shadow", "uneven light", "lined paper", "squared paper", "田字格 paper",
             "blue ballpoint", "black ballpoint", "tilted phone", "12 megapixels", "thumbnail", "cropped tight",
             "all at once")
NEGATIVES = ("empty page", "two digits", "a sentence")
PHONE = (480, 360)  # (height, width) of most test photos: small enough to make quickly, big enough for a pen line
BLACK_INK, BLUE_INK = (0.13, 0.13, 0.16), (0.10, 0.17, 0.55)  # ballpoint colours, RGB in [0, 1]
RULE_BLUE, GRID_GREY, BOX_RED = (0.55, 0.72, 0.92), (0.62, 0.74, 0.84), (0.90, 0.42, 0.40)  # printed lines


def paper(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Off-white paper, (height, width, 3) floats: a warm tint, fine grain and faint fibres."""
    tint = np.array([0.93, 0.92, 0.88]) + rng.uniform(-0.03, 0.03, 3)
    grain = ndi.gaussian_filter(rng.normal(0, 0.02, (height, width)), 0.7)
    return np.clip(tint * (1 + grain[..., None]), 0, 1)


def ink_alpha(digit: np.ndarray, size: int, pen: str = "ballpoint") -> np.ndarray:
    """An MNIST digit (28×28 uint8) as a pen stroke's opacity, size×size floats in [0, 1], sharp-edged."""
    big = np.asarray(Image.fromarray(digit).resize((size, size), Image.Resampling.BICUBIC), np.float32) / 255
    cut = 0.55 if pen == "ballpoint" else 0.35  # a higher cut gives a thinner line
    return np.clip((big - cut) / 0.15, 0, 1)


def lay_ink(page: np.ndarray, alpha: np.ndarray, top: int, left: int, colour: tuple[float, ...]) -> None:
    """Draw ink of `colour` with opacity `alpha` onto `page` in place (ink darkens: multiply)."""
    height, width = alpha.shape
    region = page[top:top + height, left:left + width]
    region *= 1 - alpha[..., None] * (1 - np.array(colour))


def rules(page: np.ndarray, spacing: int, colour: tuple[float, ...], across: bool, down: bool, width: int) -> None:
    """Printed lines every `spacing` pixels, horizontal (`across`) and/or vertical (`down`), in place."""
    height, full_width = page.shape[:2]
    mask = np.zeros((height, full_width), np.float32)
    if across:
        for row in range(spacing // 2, height, spacing):
            mask[row:row + width] = 1
    if down:
        for col in range(spacing // 2, full_width, spacing):
            mask[:, col:col + width] = 1
    page *= 1 - 0.8 * mask[..., None] * (1 - np.array(colour))


def tianzige(page: np.ndarray, box: int, top: int, left: int, width: int) -> None:
    """A 田字格 grid in red: solid squares of `box` pixels, one with its corner at (top, left), dashed midlines."""
    height, full_width = page.shape[:2]
    mask = np.zeros((height, full_width), np.float32)
    for row in range(top % box, height, box):
        mask[row:row + width] = 1
    for col in range(left % box, full_width, box):
        mask[:, col:col + width] = 1
    dash = (np.arange(max(height, full_width)) // max(2, box // 16)) % 2 == 0
    for row in range(top % box + box // 2, height, box):
        mask[row:row + width] = np.maximum(mask[row:row + width], dash[:full_width])
    for col in range(left % box + box // 2, full_width, box):
        mask[:, col:col + width] = np.maximum(mask[:, col:col + width], dash[:height, None])
    page *= 1 - 0.85 * mask[..., None] * (1 - np.array(BOX_RED))


def desk_edge(page: np.ndarray, rng: np.random.Generator, share: float) -> None:
    """A dark wooden desk along one side, its edge slightly slanted, covering about `share` of the frame."""
    height, width = page.shape[:2]
    rows, cols = np.indices((height, width), dtype=np.float32)
    side = rng.integers(4)
    t = [cols / width, 1 - cols / width, rows / height, 1 - rows / height][side]
    across = [rows / height, rows / height, cols / width, cols / width][side]
    edge = share + rng.uniform(-0.04, 0.04) * (across - 0.5)
    desk = np.clip((edge - t) * max(height, width) / 2, 0, 1)  # 0 on the paper, 1 on the desk, a 2-pixel blend
    wood = np.array([0.36, 0.25, 0.17]) * (1 + 0.15 * np.sin(across * 60 + rng.uniform(0, 6))[..., None])
    page[:] = page * (1 - desk[..., None]) + wood * desk[..., None]


def shadow(page: np.ndarray, rng: np.random.Generator) -> None:
    """A hard shadow (a hand or the phone): a half-plane through the frame, 35-50% darker, a soft 3-pixel edge."""
    height, width = page.shape[:2]
    rows, cols = np.indices((height, width), dtype=np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    distance = (cols - width / 2) * np.cos(angle) + (rows - height / 2) * np.sin(angle)
    offset = rng.uniform(-0.25, 0.25) * min(height, width)
    dark = ndi.gaussian_filter((distance > offset).astype(np.float32), 1.5)
    page *= (1 - rng.uniform(0.35, 0.5) * dark)[..., None]


def uneven_light(page: np.ndarray, rng: np.random.Generator) -> None:
    """Light falling off across the page (down to about half) and a vignette in the corners."""
    height, width = page.shape[:2]
    rows, cols = np.indices((height, width), dtype=np.float32)
    rows, cols = rows / height - 0.5, cols / width - 0.5
    angle = rng.uniform(0, 2 * np.pi)
    ramp = 0.5 + cols * np.cos(angle) + rows * np.sin(angle)  # about 0 … 1 across the page
    light = (1 - rng.uniform(0.4, 0.5) * np.clip(ramp, 0, 1)) * (1 - 0.5 * (rows ** 2 + cols ** 2))
    page *= light[..., None]


def tilt(image: Image.Image, rng: np.random.Generator, amount: float = 0.06) -> Image.Image:
    """A phone held slightly askew: a perspective warp moving each corner by up to `amount` of the frame."""
    width, height = image.size
    corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float64)
    moved = corners + rng.uniform(-amount, amount, (4, 2)) * [width, height]
    # the 8 coefficients that map output pixel (x, y) to input pixel: solve the projective equations
    rows = []
    for (x, y), (u, v) in zip(corners, moved, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    coeffs = np.linalg.solve(np.array(rows), moved.ravel())
    fill = tuple(int(c) for c in np.asarray(image)[height // 2, 2])  # paper colour near the left edge
    return image.transform(image.size, Image.Transform.PERSPECTIVE, tuple(coeffs), Image.Resampling.BILINEAR,
                           fillcolor=fill)


def as_jpeg(image: Image.Image, quality: int = 85) -> np.ndarray:
    """What a phone saves: the image through JPEG compression, as uint8 RGB."""
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    return np.asarray(Image.open(buffer).convert("RGB"))


def frame_size(artefact: str) -> tuple[int, int]:
    """(height, width) of the photo: a phone's 12 megapixels, a thumbnail, or PHONE."""
    return {"12 megapixels": (4000, 3000), "thumbnail": (64, 48), "cropped tight": (240, 220)}.get(artefact, PHONE)


def compose(digits: list[np.ndarray], artefacts: set[str], rng: np.random.Generator) -> np.ndarray:
    """A photo of `digits` written side by side on paper, with the named artefacts; uint8 (height, width, 3)."""
    size_name = next((a for a in artefacts if a in ("12 megapixels", "thumbnail", "cropped tight")), "")
    full = frame_size(size_name)
    height, width = (full[0] // 4, full[1] // 4) if size_name == "12 megapixels" else full  # enlarged at the end
    page = paper(height, width, rng)
    share = rng.uniform(0.85, 0.95) if size_name == "cropped tight" else rng.uniform(0.45, 0.6)  # of the short side
    digit_size = int(min(min(height, width) * share, 0.9 * width / (1.15 * max(1, len(digits)))))
    line = max(1, round(min(height, width) / 180))  # printed line width: 2 pixels at PHONE size
    if "lined paper" in artefacts:
        rules(page, max(4, int(digit_size * rng.uniform(0.45, 0.6))), RULE_BLUE, True, False, line)
    if "squared paper" in artefacts:
        rules(page, max(4, int(digit_size * rng.uniform(0.22, 0.3))), GRID_GREY, True, True, line)
    gap = int(digit_size * 0.15)
    total = len(digits) * digit_size + (len(digits) - 1) * gap
    jitter = 0.1 * (size_name != "cropped tight")
    top = (height - digit_size) // 2 + int(rng.uniform(-jitter, jitter) * height)
    left = (width - total) // 2 + int(rng.uniform(-jitter, jitter) * width * (len(digits) == 1))
    if "田字格 paper" in artefacts:
        box = int(digit_size * 1.3)
        tianzige(page, box, top - (box - digit_size) // 2, left - (box - digit_size) // 2, line)
    colour = BLUE_INK if "blue ballpoint" in artefacts else BLACK_INK if "black ballpoint" in artefacts else (
        BLUE_INK if rng.random() < 0.5 else BLACK_INK)
    pen = "ballpoint" if {"blue ballpoint", "black ballpoint"} & artefacts or rng.random() < 0.5 else "felt pen"
    for i, digit in enumerate(digits):
        lay_ink(page, ink_alpha(digit, digit_size, pen), top, left + i * (digit_size + gap), colour)
    if "uneven light" in artefacts:
        uneven_light(page, rng)
    if "shadow" in artefacts:
        shadow(page, rng)
    if "desk edge" in artefacts:
        desk_edge(page, rng, rng.uniform(0.1, 0.2))
    sensor = rng.normal(0, 0.015, page.shape[:2])[..., None]  # a little sensor noise
    image = Image.fromarray(np.round(np.clip(page + sensor, 0, 1) * 255).astype(np.uint8))
    if "tilted phone" in artefacts:
        image = tilt(image, rng)
    if image.size != full[::-1]:  # a 12-megapixel photo: enlarged, so the pen line is soft, as in a real one
        image = image.resize(full[::-1], Image.Resampling.BICUBIC)
    return as_jpeg(image)


def photo(digit: np.ndarray, artefact: str, rng: np.random.Generator) -> np.ndarray:
    """One MNIST digit (28×28 uint8) as a photo with one artefact (see ARTEFACTS); uint8 (height, width, 3)."""
    if artefact not in ARTEFACTS:
        raise ValueError(f"unknown artefact {artefact!r}; choose one of {', '.join(ARTEFACTS)}")
    if artefact == "all at once":
        chosen = {"desk edge", "shadow", "uneven light", "lined paper", "blue ballpoint", "tilted phone"}
    else:
        chosen = {artefact}
    return compose([digit], chosen, rng)


def negative(kind: str, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A page that holds no single digit: an empty page, two digits side by side, or a row of eight (a sentence)."""
    count = {"empty page": 0, "two digits": 2, "a sentence": 8}.get(kind)
    if count is None:
        raise ValueError(f"unknown negative {kind!r}; choose one of {', '.join(NEGATIVES)}")
    digits = [x[i] for i in rng.choice(len(x), count, replace=False)]
    extras = {"lined paper"} if rng.random() < 0.5 else set()
    return compose(digits, extras, rng)


def photo_set(x: np.ndarray, y: np.ndarray, per_artefact: int = 100, artefacts: tuple[str, ...] = ARTEFACTS,
              seed: int = 0) -> list[tuple[str, int, np.ndarray]]:
    """(artefact, label, photo) for `per_artefact` digits per artefact, the same digits for every artefact."""
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(x), per_artefact, replace=False)
    cases = []
    for a, artefact in enumerate(artefacts):
        for i in chosen:
            cases.append((artefact, int(y[i]), photo(x[i], artefact, np.random.default_rng([seed, a, int(i)]))))
    return cases
