"""The photo-like test set (helpers.photos) and Chapter 9's recipe on it: each artefact read right, each step needed."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import helpers
from helpers import custom, photos
from helpers.images import ImageProblem, to_gray
from helpers.saved import ch09

DIGITS = range(6)  # the first six MNIST test digits: 7 2 1 0 4 1
SINGLE = [a for a in photos.ARTEFACTS if a != "all at once"]  # one artefact each; Chapter 9 reports the combination


@pytest.fixture(scope="module")
def mnist_test():
    """MNIST's test images and labels."""
    return helpers.load_mnist(progress=False)[1]


def read(rgb: np.ndarray) -> np.ndarray:
    """What the model sees of a photo: Chapter 9's recipe on its grayscale."""
    return ch09.preprocess(to_gray(Image.fromarray(rgb)))


def likeness(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two 28×28 images (1: the same up to brightness)."""
    a, b = a.astype(float).ravel(), b.astype(float).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9))


def worst_likeness(x: np.ndarray, artefact: str) -> float:
    """The lowest likeness between an MNIST digit and the recipe's reading of its photo, over DIGITS (0 if refused)."""
    scores = []
    for i in DIGITS:
        try:
            scores.append(likeness(read(photos.photo(x[i], artefact, np.random.default_rng([5, i]))), x[i]))
        except ImageProblem:
            scores.append(0.0)
    return min(scores)


# ---------------------------------------------------------------- the generator


def test_photos_are_reproducible_and_sized_like_phone_photos(mnist_test):
    x, _ = mnist_test
    first, again = (photos.photo(x[0], "shadow", np.random.default_rng(1)) for _ in range(2))
    assert np.array_equal(first, again) and first.dtype == np.uint8 and first.shape == (*photos.PHONE, 3)
    assert photos.photo(x[0], "12 megapixels", np.random.default_rng(1)).shape == (4000, 3000, 3)
    assert photos.photo(x[0], "thumbnail", np.random.default_rng(1)).shape == (64, 48, 3)


def test_unknown_artefacts_are_refused_with_the_choices(mnist_test):
    x, _ = mnist_test
    with pytest.raises(ValueError, match="shadow"):
        photos.photo(x[0], "fog", np.random.default_rng(0))
    with pytest.raises(ValueError, match="two digits"):
        photos.negative("three digits", x, np.random.default_rng(0))


def test_photo_set_uses_the_same_digits_for_every_artefact(mnist_test):
    x, y = mnist_test
    cases = photos.photo_set(x[:50], y[:50], per_artefact=3, artefacts=("clean", "lined paper"))
    assert [label for _, label, _ in cases[:3]] == [label for _, label, _ in cases[3:]]
    assert [artefact for artefact, _, _ in cases] == ["clean"] * 3 + ["lined paper"] * 3


# ---------------------------------------------------------------- the recipe on each artefact


@pytest.mark.parametrize("artefact", SINGLE)
def test_each_artefact_is_read_close_to_the_mnist_digit(mnist_test, artefact):
    assert worst_likeness(mnist_test[0], artefact) >= 0.6


def test_each_artefact_is_classified_right_by_the_chapter_8_cnn(cnn, mnist_test):
    x, y = mnist_test
    for artefact in SINGLE:
        for i in DIGITS:
            image = read(photos.photo(x[i], artefact, np.random.default_rng([5, i])))
            assert custom.model_probabilities(cnn, image[None]).argmax() == y[i], (artefact, i)


def refused(rgb: np.ndarray) -> bool:
    """Whether the recipe refuses a page as holding no single digit."""
    try:
        read(rgb)
    except ImageProblem as err:
        assert "several digits" in str(err) or "no ink" in str(err), err
        return True
    return False


@pytest.mark.parametrize(("kind", "at_least"), [("empty page", 5), ("two digits", 5), ("a sentence", 3)])
def test_pages_without_one_digit_are_refused(mnist_test, kind, at_least):
    pages = [photos.negative(kind, mnist_test[0], np.random.default_rng(seed)) for seed in range(5)]
    assert sum(refused(page) for page in pages) >= at_least  # a row of eight small digits is sometimes one mark


def test_polarity_is_found_under_a_shadow_and_kept_for_mnist(mnist_test):
    x, _ = mnist_test
    for i in DIGITS:  # dark ink on paper: inverted, even when a shadow darkens most of the border
        for artefact in ("shadow", "desk edge"):
            gray = to_gray(Image.fromarray(photos.photo(x[i], artefact, np.random.default_rng([5, i]))))
            assert ch09.ink_on_black(ch09.to_working_size(gray))[1], (artefact, i)
        assert not ch09.ink_on_black(x[i] / 255)[1]  # MNIST itself: bright ink on black, kept


# ---------------------------------------------------------------- each step is needed: without it, an artefact fails


@pytest.mark.parametrize(("step", "stand_in", "artefacts"), [
    ("flatten_background", lambda ink: ink, ("uneven light", "shadow", "lined paper")),
    ("clear_border", lambda ink: ink, ("desk edge",)),
])
def test_without_the_step_its_artefacts_are_misread(monkeypatch, mnist_test, step, stand_in, artefacts):
    for artefact in artefacts:
        assert worst_likeness(mnist_test[0], artefact) >= 0.6
    monkeypatch.setattr(ch09, step, stand_in)
    for artefact in artefacts:
        assert worst_likeness(mnist_test[0], artefact) < 0.5, artefact


def test_without_one_digit_two_digits_are_squeezed_into_one(monkeypatch, mnist_test):
    page = to_gray(Image.fromarray(photos.negative("two digits", mnist_test[0], np.random.default_rng(0))))
    with pytest.raises(ImageProblem, match="several digits"):
        ch09.preprocess(page)
    monkeypatch.setattr(ch09, "one_digit", lambda ink: ink)
    assert ch09.preprocess(page).shape == (28, 28)


def test_a_ruled_line_under_a_row_of_digits_does_not_join_them():
    row = np.zeros((40, 200), np.float32)
    for left in range(10, 190, 45):
        row[5:35, left:left + 25] = 1  # four marks, 20 columns apart
    row[33:35, :] = 0.5  # a printed line through all of them
    assert ch09.marks(row) == 4
    assert ch09.marks(row, floor=0) == 1  # without the floor, the line joins them into one
