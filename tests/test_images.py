"""Reading any image safely (helpers.images) and Chapter 9's MNIST preprocessing steps (helpers.saved.ch09)."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw

import helpers
from helpers import images
from helpers.images import ImageProblem
from helpers.saved import ch09


def drawn_digit(size: int = 200, width: int = 14, dark_on_light: bool = True) -> np.ndarray:
    """A '7'-like shape drawn with thick lines: float grayscale, dark ink on white (or the inverse)."""
    picture = Image.new("L", (size, size), 255 if dark_on_light else 0)
    ink = 0 if dark_on_light else 255
    draw = ImageDraw.Draw(picture)
    draw.line([(0.3 * size, 0.25 * size), (0.7 * size, 0.25 * size), (0.45 * size, 0.8 * size)], fill=ink,
              width=width)
    return np.asarray(picture, dtype=np.float32) / 255


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims width×height pixels but holds almost no data (a decompression-bomb-shaped file)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


# ---------------------------------------------------------------- modes and reading


@pytest.mark.parametrize("mode", ["L", "RGB", "P", "1", "CMYK", "I", "F", "RGBA", "LA"])
def test_every_mode_becomes_gray_in_0_1(mode):
    gray = np.zeros((4, 6), np.float32)
    gray[1:3, 2:4] = 1.0  # a white square on black
    picture = Image.fromarray((gray * 255).astype(np.uint8)).convert(mode)  # "I" and "F" hold 0..255 here
    assert picture.mode == mode
    out = images.to_gray(picture)
    assert out.dtype == np.float32 and out.shape == (4, 6)
    np.testing.assert_allclose(out, gray, atol=0.01)


@pytest.mark.parametrize("values, expected", [
    (np.array([[0, 32768, 65535]], np.uint16), [0, 32768 / 65535, 1]),  # I;16: 16-bit range
    (np.array([[0, 1000, 65535]], np.int32), [0, 1000 / 65535, 1]),  # I: 16-bit values in 32 bits
    (np.array([[0, 51, 255]], np.int32), [0, 0.2, 1]),  # I: 8-bit values in 32 bits are read as 8-bit
    (np.array([[0, 0.25, 1]], np.float32), [0, 0.25, 1]),  # F: already in [0, 1]
    (np.array([[0, 51, 255]], np.float32), [0, 0.2, 1]),  # F: on the 0..255 scale
], ids=["I;16", "I-16-bit", "I-8-bit", "F-0-1", "F-0-255"])
def test_deep_modes_are_scaled_by_the_range_their_values_use(values, expected):
    picture = Image.fromarray(values)
    assert picture.mode in ("I;16", "I", "F")
    np.testing.assert_allclose(images.to_gray(picture), [expected], atol=1e-6)


def test_transparency_is_laid_over_white():
    rgba = np.zeros((3, 3, 4), np.uint8)  # black everywhere, transparent except the centre
    rgba[1, 1, 3] = 255
    out = images.to_gray(Image.fromarray(rgba, "RGBA"))
    assert out[1, 1] == 0 and np.all(np.delete(out.ravel(), 4) == 1)


def test_sixteen_bit_png_keeps_its_range(tmp_path):
    path = tmp_path / "deep.png"
    Image.fromarray(np.array([[0, 32768, 65535]], np.uint16)).save(path)
    np.testing.assert_allclose(images.read_image(path), [[0, 0.5, 1]], atol=1e-3)


def test_corrupt_file_names_the_file_and_the_reason(tmp_path):
    path = tmp_path / "broken.png"
    Image.fromarray(np.full((64, 64), 200, np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:60])  # cut off mid-way
    with pytest.raises(ImageProblem, match=r"^broken.png: damaged or truncated"):
        images.read_image(path)


def test_non_image_file_is_refused(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("shopping list: milk, eggs")
    with pytest.raises(ImageProblem, match=r"^notes.png: not an image"):
        images.read_image(path)
    with pytest.raises(ImageProblem, match="no such file"):
        images.read_image(tmp_path / "missing.png")


def test_huge_image_is_refused_before_decoding(tmp_path):
    path = tmp_path / "huge.png"
    Image.new("1", (8000, 8000)).save(path)  # 8 KB on disk, 64 megapixels decoded
    with pytest.raises(ImageProblem, match=r"huge.png: 8000×8000 pixels \(64 megapixels\) is over the 40-megapixel"):
        images.read_image(path)


def test_decompression_bomb_header_is_refused(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(50_000, 50_000))  # Pillow itself calls this a bomb on open
    with pytest.raises(ImageProblem, match="bomb.png: .*(decompression bomb|megapixel)"):
        images.read_image(path)
    small = tmp_path / "small.png"
    Image.new("L", (30, 30)).save(small)
    with pytest.raises(ImageProblem, match="over the 0-megapixel limit"):
        images.read_image(small, max_pixels=100)


def test_large_jpeg_is_read_at_reduced_size(tmp_path):
    path = tmp_path / "photo.jpg"
    Image.fromarray((drawn_digit(3000, 180) * 255).astype(np.uint8)).save(path, quality=80)
    gray = images.read_image(path)
    assert max(gray.shape) < 3000 and max(gray.shape) >= images.DRAFT_SIZE >= 2 * ch09.WORK_SIZE
    assert ch09.preprocess(gray).max() == 255


def test_resize_shrinks_by_area_and_enlarges_smoothly():
    checker = np.indices((8, 8)).sum(0) % 2 * 1.0  # a 1-pixel checkerboard: area averaging gives flat grey
    np.testing.assert_allclose(images.resize(checker, 4, 4), 0.5, atol=1e-6)
    step = np.zeros((4, 4), np.float32)
    step[:, 2:] = 1
    big = images.resize(step, 8, 16)
    assert big.shape == (8, 16) and big.min() >= 0 and big.max() <= 1  # bicubic overshoot is clipped
    assert np.all(np.diff(big[0]) >= -1e-6) and 0 < big[0, 7] < 1  # monotone, with a soft edge


# ---------------------------------------------------------------- Chapter 9's MNIST steps


def test_preprocessing_an_mnist_digit_returns_it_nearly_unchanged():
    """The pipeline matches MNIST's conventions: MNIST test digits come back (nearly) as they were.

    Tolerance: after aligning by at most one pixel (MNIST rounds its centring to whole pixels, so a centre of mass
    half-way between two pixels may go either way), the mean absolute difference is at most 2 grey levels of 255
    for 99% of 1,000 digits, and 95% need no alignment at all.
    """
    _, (x_test, _) = helpers.load_mnist(progress=False)
    mads, shifted = [], 0
    for x in x_test[:1000]:
        out = ch09.preprocess(x).astype(np.int16)
        diffs = {(dy, dx): np.abs(out - np.roll(x.astype(np.int16), (dy, dx), axis=(0, 1))).mean()
                 for dy in (-1, 0, 1) for dx in (-1, 0, 1)}
        best = min(diffs, key=diffs.get)
        shifted += best != (0, 0)
        mads.append(diffs[best])
    mads = np.array(mads)
    assert np.mean(mads <= 2.0) >= 0.99, np.percentile(mads, [50, 99])
    assert np.median(mads) <= 1.0
    assert shifted <= 50


def test_output_follows_mnist_conventions():
    out = ch09.preprocess(drawn_digit())
    assert out.dtype == np.uint8 and out.shape == (28, 28) and out.max() == 255
    rows, cols = np.flatnonzero(out.any(1)), np.flatnonzero(out.any(0))
    assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 == 20  # fits the 20×20 box, touching it
    from scipy import ndimage as ndi

    row, col = ndi.center_of_mass(out.astype(float))
    assert abs(row - ch09.CENTRE) <= 0.5 and abs(col - ch09.CENTRE) <= 0.5


def test_aspect_ratio_is_kept():
    bar = np.zeros((300, 300), np.float32)
    bar[50:250, 140:160] = 1  # 200 tall, 20 wide: 10 to 1
    out = ch09.preprocess(bar)
    rows, cols = np.flatnonzero(out.any(1)), np.flatnonzero(out.any(0))
    assert len(rows) == 20 and len(cols) <= 3


def test_polarity_and_uneven_light_do_not_matter():
    clean = ch09.preprocess(drawn_digit(dark_on_light=False))
    inverted = ch09.preprocess(drawn_digit(dark_on_light=True))
    size = 200
    rows, cols = np.mgrid[0:size, 0:size] / size
    shadowed = drawn_digit() * (1 - 0.5 * cols) + 0.1 * rows  # a strong shadow across the page
    noisy = np.clip(drawn_digit() + np.random.default_rng(0).normal(0, 0.05, (size, size)), 0, 1)
    for other in (inverted, ch09.preprocess(shadowed), ch09.preprocess(noisy)):
        assert np.abs(other.astype(int) - clean.astype(int)).mean() < 8  # of 255


def test_blank_and_noise_only_images_have_no_ink():
    for blank in (np.ones((50, 80)), np.zeros((50, 80)),
                  np.clip(0.8 + np.random.default_rng(1).normal(0, 0.03, (120, 120)), 0, 1)):
        with pytest.raises(ImageProblem, match="no ink found"):
            ch09.preprocess(blank)


def test_thin_pen_strokes_are_thickened():
    thin = drawn_digit(size=1000, width=3)  # a ballpoint line in a big photo: 0.06 px wide at MNIST's scale
    steps = ch09.preprocess_steps(thin)
    assert ch09.stroke_width(steps["cropped"]) * 20 / max(steps["cropped"].shape) < ch09.MIN_STROKE
    assert ch09.stroke_width(ch09.preprocess(thin) / 255) >= ch09.MIN_STROKE


def test_tiny_images_are_enlarged_first():
    uci_like = np.zeros((8, 8), np.float32)
    uci_like[1:7, 3:5] = 1
    assert max(ch09.to_working_size(uci_like).shape) >= ch09.BOX
    assert ch09.preprocess(uci_like).max() == 255


def test_centre_by_mass_puts_the_centre_of_mass_on_the_centre_and_never_cuts_ink():
    from scipy import ndimage as ndi

    rng = np.random.default_rng(0)
    for _ in range(50):
        height, width = rng.integers(1, 21, 2)
        ink = rng.random((height, width)).astype(np.float32) ** 3  # uneven ink: the centre of mass is off-centre
        out = ch09.centre_by_mass(ink)
        assert out.shape == (ch09.FRAME, ch09.FRAME) and out.sum() == pytest.approx(ink.sum(), rel=1e-5)
        row, col = ndi.center_of_mass(out)
        assert abs(row - ch09.CENTRE) <= 0.5 and abs(col - ch09.CENTRE) <= 0.5
    corner = np.zeros((20, 20), np.float32)
    corner[:3, :3] = 1  # the mass is in a corner: centring it would push the box out of the frame
    assert np.array_equal(ch09.centre_by_mass(corner)[8:, 8:], corner)  # pushed only as far as the frame allows


def test_show_steps_draws_one_row_per_example():
    import matplotlib

    matplotlib.use("Agg")
    fig = images.show_steps([ch09.preprocess_steps(drawn_digit()), ch09.preprocess_steps(drawn_digit(120))])
    assert len(fig.axes) == 2 * len(ch09.preprocess_steps(drawn_digit()))
