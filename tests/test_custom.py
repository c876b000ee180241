"""Labelled folders, bad input, the synthetic example set, UCI digits, data checks and predictions (helpers.custom)."""

from __future__ import annotations

import subprocess
import sys

import matplotlib
import numpy as np
import pytest
from PIL import Image, ImageDraw

import helpers
from helpers import custom
from helpers.custom import SkippedFilesWarning
from helpers.images import ImageProblem

matplotlib.use("Agg")


def save_digit(path, size: int = 90, mode: str = "L") -> None:
    """Draw a thick dark '1' on light paper and save it (any mode)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    picture = Image.new("L", (size, size), 240)
    ImageDraw.Draw(picture).line([(size // 2, size // 5), (size // 2, 4 * size // 5)], fill=20, width=size // 10)
    picture.convert(mode).save(path)


def good_folder(root):
    save_digit(root / "1" / "a.png")
    save_digit(root / "1" / "b.jpg", size=300, mode="RGB")
    return root


def bad_corrupt(root):
    path = root / "2" / "corrupt.png"
    save_digit(path)
    path.write_bytes(path.read_bytes()[:50])
    return "2/corrupt.png: damaged or truncated"


def bad_fake_image(root):
    (root / "3").mkdir()
    (root / "3" / "fake.png").write_text("not a picture")
    return "3/fake.png: not an image"


def bad_text_file(root):
    (root / "1" / "notes.txt").write_text("the 1s were easy")
    return "1/notes.txt: not an image file (extension '.txt'), skipped"


def bad_empty_folder(root):
    (root / "5").mkdir()
    return "5/: no images in this folder"


def bad_folder_name(root):
    save_digit(root / "seven" / "x.png")
    return "seven/: folder name is not a digit 0-9, skipped"


def bad_blank(root):
    (root / "6").mkdir()
    Image.new("RGB", (64, 64), "white").save(root / "6" / "blank.png")
    return "6/blank.png: no ink found"


def bad_huge(root):
    (root / "7").mkdir()
    Image.new("1", (8000, 8000)).save(root / "7" / "huge.png")
    return "7/huge.png: 8000×8000 pixels (64 megapixels) is over the 40-megapixel limit"


def bad_stray_file(root):
    save_digit(root / "stray.png")
    return "stray.png: not inside a digit folder (0-9), skipped"


BAD_CASES = [bad_corrupt, bad_fake_image, bad_text_file, bad_empty_folder, bad_folder_name, bad_blank, bad_huge,
             bad_stray_file]


@pytest.mark.parametrize("make_bad", BAD_CASES, ids=[f.__name__ for f in BAD_CASES])
def test_a_bad_item_is_reported_by_name_and_never_stops_the_folder(tmp_path, make_bad):
    root = good_folder(tmp_path / "custom")
    expected = make_bad(root)
    before = custom.tree_fingerprint(root)
    with pytest.warns(SkippedFilesWarning, match="1 skipped in custom/") as record:
        data = custom.load_folder(root)
    assert data.files == ["1/a.png", "1/b.jpg"] and data.y.tolist() == [1, 1] and data.x.shape == (2, 28, 28)
    assert len(data.problems) == 1 and data.problems[0].startswith(expected), data.problems
    assert expected in str(record[0].message)
    assert custom.tree_fingerprint(root) == before  # nothing modified or deleted


def test_all_bad_cases_together_and_an_empty_root(tmp_path):
    root = good_folder(tmp_path / "custom")
    expected = [make(root) for make in BAD_CASES]
    with pytest.warns(SkippedFilesWarning, match=f"{len(expected)} skipped") as record:
        data = custom.load_folder(root)
    assert len(data) == 2 and len(data.problems) == len(expected)
    reasons = str(record[0].message).splitlines()[1:]
    assert len(reasons) == len(expected) and all(" · " in line for line in reasons), reasons  # each also in Chinese
    (tmp_path / "empty").mkdir()
    with pytest.warns(SkippedFilesWarning, match="no usable images"):
        nothing = custom.load_folder(tmp_path / "empty")
    assert nothing.x.shape == (0, 28, 28) and nothing.y.shape == (0,)
    with pytest.warns(SkippedFilesWarning, match="no such folder"):
        custom.load_folder(tmp_path / "missing")


def test_hidden_files_and_readme_are_ignored_quietly(tmp_path, recwarn):
    root = good_folder(tmp_path / "custom")
    (root / "README.txt").write_text("hello")
    (root / "1" / ".DS_Store").write_bytes(b"\0\1")
    data = custom.load_folder(root)
    assert len(data) == 2 and not data.problems and not recwarn.list


# ---------------------------------------------------------------- one file


def test_load_digit_reads_and_preprocesses_any_file(tmp_path):
    save_digit(tmp_path / "one.png", size=300, mode="RGB")  # dark ink on light paper, colour
    x = helpers.load_digit(tmp_path / "one.png")
    assert helpers.load_digit is custom.load_digit
    assert x.dtype == np.uint8 and x.shape == (28, 28) and x.max() == 255 and x[0, 0] == 0  # white on black
    rows = np.flatnonzero(x.any(1))
    assert rows[-1] - rows[0] + 1 == 20  # a vertical bar: 20 pixels tall, MNIST's box


def test_load_digit_prefixes_the_name(tmp_path):
    path = tmp_path / "white.png"
    Image.new("L", (40, 40), 255).save(path)
    with pytest.raises(ImageProblem, match=r"^3/white.png: no ink found"):
        custom.load_digit(path, name="3/white.png")
    with pytest.raises(ImageProblem, match=r"^white.png: no ink found"):
        custom.load_digit(path)


def test_importing_helpers_loads_no_deep_learning_framework():
    code = "import sys, helpers, helpers.custom; print(sorted({'torch', 'tensorflow', 'keras'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ---------------------------------------------------------------- the synthetic example set


def test_example_set_is_deterministic_additive_and_never_overwrites(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    mine = a / "3" / "synthetic_3_000.png"  # a reader's file that happens to use the course's name
    save_digit(mine)
    own = a / "3" / "my_three.jpg"
    save_digit(own, mode="RGB")
    readme = a / "README.txt"
    readme.write_text("my notes")
    before = {p: p.read_bytes() for p in (mine, own, readme)}
    assert custom.make_example_set(a, per_digit=3) == 29  # 30 minus the name that was taken
    assert custom.make_example_set(a, per_digit=3) == 0
    assert {p: p.read_bytes() for p in (mine, own, readme)} == before
    assert custom.make_example_set(b, per_digit=3) == 30
    names = sorted(p.relative_to(b).as_posix() for p in b.rglob("synthetic_*"))
    assert len(names) == 30 and all(custom.is_synthetic(n) for n in names) and not custom.is_synthetic("3/my.png")
    for name in names:  # the same bytes on every run, except where the reader's file took the name
        if name != "3/synthetic_3_000.png":
            assert (a / name).read_bytes() == (b / name).read_bytes()
    assert "synthetic" in (b / "README.txt").read_text()
    data = custom.load_folder(b, warn=False)
    assert len(data) == 30 and not data.problems and np.bincount(data.y).tolist() == [3] * 10


def test_example_set_covers_many_modes(tmp_path):
    custom.make_example_set(tmp_path, per_digit=4)
    modes = {Image.open(p).mode for p in tmp_path.rglob("synthetic_*")}
    suffixes = {p.suffix for p in tmp_path.rglob("synthetic_*")}
    assert len(modes) >= 4 and suffixes == {".png", ".jpg"}
    assert len(custom.digit_fonts()) >= 10


# ---------------------------------------------------------------- UCI digits and data checks


def test_uci_digits_load_without_download():
    x, y = custom.load_uci_digits()
    assert x.shape == (1797, 28, 28) and x.dtype == np.uint8 and np.bincount(y).min() >= 170
    raw, y_raw = custom.load_uci_digits(mnist_style=False)
    assert raw.shape == (1797, 8, 8) and raw.max() == 16 and (y_raw == y).all()
    bitmap = custom.uci_bitmap(raw[0])
    assert bitmap.shape == (32, 32) and bitmap.min() == 0 and bitmap.max() == 1


def test_near_duplicates_finds_copies_only():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (6, 28, 28)).astype(np.uint8)
    x[4] = x[1]
    x[5] = np.clip(x[2].astype(int) + rng.integers(-3, 4, (28, 28)), 0, 255)
    pairs = custom.near_duplicates(x, threshold=0.99)
    assert [(i, j) for i, j, _ in pairs] == [(1, 4), (2, 5)] and pairs[0][2] == pytest.approx(1.0)


def test_suspicious_labels_are_confident_disagreements_surest_first():
    probs = np.array([[0.95, 0.05], [0.2, 0.8], [0.02, 0.98], [0.6, 0.4], [0.97, 0.03]])
    labels = np.array([1, 1, 0, 1, 0])
    assert custom.suspicious_labels(probs, labels, confidence=0.9).tolist() == [2, 0]


# ---------------------------------------------------------------- predictions


def uniform_model(x: np.ndarray) -> np.ndarray:
    """A stand-in model: always 70% 'one'."""
    probs = np.full((len(x), 10), 0.3 / 9)
    probs[:, 1] = 0.7
    return probs


def test_predict_files_on_a_folder_with_good_and_bad_files(tmp_path):
    root = good_folder(tmp_path / "mine")
    bad_corrupt(root)
    bad_text_file(root)
    before = custom.tree_fingerprint(root)
    with pytest.warns(SkippedFilesWarning) as record:
        predictions, fig = custom.predict_files(uniform_model, root)
    message = str(record[0].message)
    assert "mine/2/corrupt.png: damaged" in message and "mine/1/notes.txt: not an image file" in message
    assert "图像文件损坏或不完整" in message and "不是图像文件" in message  # bilingual, for the Chinese edition
    by_file = {p.file: p for p in predictions}
    assert sorted(by_file) == ["mine/1/a.png", "mine/1/b.jpg", "mine/2/corrupt.png"]
    assert by_file["mine/1/a.png"].digit == 1 and by_file["mine/1/a.png"].confidence == pytest.approx(0.7)
    assert by_file["mine/1/a.png"].image.shape == (28, 28)
    assert by_file["mine/2/corrupt.png"].digit is None and "damaged" in by_file["mine/2/corrupt.png"].problem
    assert fig is not None and len([ax for ax in fig.axes if ax.images]) == 2
    table = custom.prediction_table(predictions)
    assert "mine/1/a.png" in table and "damaged or truncated" in table
    assert custom.tree_fingerprint(root) == before


def test_predict_files_on_files_with_a_torch_model(tmp_path):
    import torch

    save_digit(tmp_path / "one.png", size=500, mode="P")
    save_digit(tmp_path / "two.tif", size=40, mode="I;16")
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)).eval()
    predictions, fig = custom.predict_files(model, [tmp_path / "one.png", str(tmp_path / "two.tif")], figure=False)
    assert [p.file for p in predictions] == ["one.png", "two.tif"] and fig is None
    for p in predictions:
        assert p.problem is None and p.probabilities.shape == (10,) and p.probabilities.sum() == pytest.approx(1, 1e-5)
        assert p.digit == int(p.probabilities.argmax())


def test_predict_files_on_an_empty_folder_warns_and_returns_nothing(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.warns(SkippedFilesWarning, match="empty/: no image files in this folder"):
        predictions, fig = custom.predict_files(uniform_model, empty)
    assert predictions == [] and fig is None


def test_every_skip_reason_the_course_writes_has_a_chinese_translation():
    """Each reason string in helpers' source (and Chapter 9's saved preprocessing) matches a REASONS_ZH key."""
    import inspect

    from helpers import images
    from helpers.saved import ch09
    sources = inspect.getsource(custom) + inspect.getsource(images) + inspect.getsource(ch09)
    for reason in custom.REASONS_ZH:
        assert reason in sources, f"REASONS_ZH has a reason no code writes: {reason!r}"
    assert custom.bilingual("a.png: no such file") == "a.png: no such file · 文件不存在"
    assert custom.bilingual("something new") == "something new"


# ---------------------------------------------------------------- your files only (issue 16)


def test_own_only_takes_the_argument_else_the_environment_variable(monkeypatch):
    monkeypatch.delenv(custom.OWN_ONLY_VARIABLE, raising=False)
    assert custom.OWN_ONLY_VARIABLE == "COURSE_OWN_DIGITS_ONLY" and custom.own_only() is False
    for value, expected in [("1", True), ("TRUE", True), (" yes ", True), ("on", True), ("0", False),
                            ("false", False), ("No", False), ("off", False), ("", False)]:
        monkeypatch.setenv(custom.OWN_ONLY_VARIABLE, value)
        assert custom.own_only() is expected, value
        assert custom.own_only(not expected) is (not expected)  # the argument wins
    monkeypatch.setenv(custom.OWN_ONLY_VARIABLE, "maybe")
    with pytest.raises(ValueError, match=r"COURSE_OWN_DIGITS_ONLY='maybe'.*1, true, yes, on.*0, false, no, off"):
        custom.own_only()
    assert custom.own_only(True) is True  # an explicit argument never reads the variable


def test_load_folder_own_only_leaves_the_synthetic_examples_out(tmp_path):
    root = tmp_path / "custom"
    custom.make_example_set(root, per_digit=2)
    save_digit(root / "1" / "mine.png")
    save_digit(root / "1" / "synthetic_photo.jpg", mode="RGB")  # the course's prefix: counts as synthetic
    save_digit(root / "7" / "seven.jpg", mode="RGB")
    before = custom.tree_fingerprint(root)
    assert len(custom.load_folder(root, warn=False)) == 23
    with pytest.warns(SkippedFilesWarning, match="8 skipped") as record:
        data = custom.load_folder(root, own_only=True)
    assert data.files == ["1/mine.png", "7/seven.jpg"] and data.y.tolist() == [1, 7]
    assert [p.split(":")[0] for p in data.problems] == [f"{d}/" for d in (0, 2, 3, 4, 5, 6, 8, 9)]
    assert all("no images in this folder of your own" in p for p in data.problems)
    assert "此文件夹中没有图像" in str(record[0].message)
    only_examples = tmp_path / "examples"
    custom.make_example_set(only_examples, per_digit=1)
    with pytest.warns(SkippedFilesWarning, match="no usable images of your own.*COURSE_OWN_DIGITS_ONLY"):
        nothing = custom.load_folder(only_examples, own_only=True)
    assert len(nothing) == 0 and custom.tree_fingerprint(root) == before


def split_folder() -> tuple[custom.DigitFolder, list[list[int]]]:
    """Random images, 0-9 per digit, with near-duplicate groups (one chain, one filed under two digits)."""
    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(10), [9, 2, 1, 0, 5, 2, 3, 4, 6, 7])
    x = rng.integers(0, 256, (len(y), 28, 28)).astype(np.uint8)  # random images: cosine similarity about 0.75
    zero, four, five = np.flatnonzero(y == 0), np.flatnonzero(y == 4), np.flatnonzero(y == 5)
    x[zero[1]] = x[zero[0]]  # an exact copy
    x[zero[2]] = np.clip(x[zero[1]].astype(int) + rng.integers(-2, 3, (28, 28)), 0, 255)  # a chain of three
    x[four[3]] = x[zero[5]]  # the same photo filed under 0 and under 4
    x[five[1]] = x[five[0]]  # both 5s are one photo: no split possible
    groups = [[zero[0], zero[1], zero[2]], [zero[5], four[3]], [five[0], five[1]]]
    return custom.DigitFolder(x, y.astype(np.int64)), groups


def test_own_split_is_stratified_deterministic_and_keeps_duplicates_together():
    folder, groups = split_folder()
    train, held = custom.own_split(folder)
    assert np.array_equal(np.sort(np.concatenate([train, held])), np.arange(len(folder)))  # each image once
    again = custom.own_split(folder)
    assert np.array_equal(train, again[0]) and np.array_equal(held, again[1])
    assert any(not np.array_equal(held, custom.own_split(folder, seed=s)[1]) for s in (1, 2, 3))
    for group in groups:
        assert np.isin(group, held).all() or np.isin(group, train).all(), group
    held_per_digit = np.bincount(folder.y[held], minlength=10)
    train_per_digit = np.bincount(folder.y[train], minlength=10)
    for digit in (0, 1, 4, 6, 7, 8, 9):  # at least two distinct images: some of each side
        assert held_per_digit[digit] >= 1 and train_per_digit[digit] >= 1, digit
    assert held_per_digit[2] == 0 and held_per_digit[5] in (0, 2) and held_per_digit[3] == 0  # 1 image; 1 photo; 0
    assert held_per_digit[9] == round(0.3 * 7) and held_per_digit[8] == round(0.3 * 6)  # no duplicates: the fraction
    more = custom.own_split(folder, held_out=0.6)[1]
    assert np.bincount(folder.y[more], minlength=10)[9] == round(0.6 * 7)


def test_own_split_of_an_empty_folder_and_a_bad_fraction():
    empty = custom.DigitFolder(np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.int64))
    train, held = custom.own_split(empty)
    assert train.size == 0 and held.size == 0
    folder, _ = split_folder()
    for fraction in (0, 1, 1.5):
        with pytest.raises(ValueError, match="held_out"):
            custom.own_split(folder, held_out=fraction)
