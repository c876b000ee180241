"""`python -m helpers.predict`: the table, the exit status, the contact sheet, the model choice and the first run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict

import matplotlib
import numpy as np
import pytest
from PIL import Image

import helpers
from helpers import custom, predict, recipes

matplotlib.use("Agg")
HEADER = "digit   prob.  runner-up"


@pytest.fixture(scope="module")
def digits():
    """The first six MNIST test digits (7 2 1 0 4 1) and their labels."""
    _, (x_test, y_test) = helpers.load_mnist(progress=False)
    return x_test[:6], y_test[:6]


def paper(x: np.ndarray, size: int = 140, margin: int = 30) -> Image.Image:
    """An MNIST digit enlarged as dark ink on white paper, with a margin: what a scan or a photo looks like."""
    ink = Image.fromarray(255 - x).resize((size, size), Image.Resampling.BICUBIC)
    page = Image.new("L", (size + 2 * margin, size + 2 * margin), 255)
    page.paste(ink, (margin, margin))
    return page


def save_digits(folder, x, y, suffixes=(".png", ".jpg")) -> list:
    """Write each digit as <label>_<i> with the suffixes in turn; return the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (image, label) in enumerate(zip(x, y, strict=True)):
        path = folder / f"{label}_{i}{suffixes[i % len(suffixes)]}"
        paper(image).convert("RGB" if path.suffix == ".jpg" else "L").save(path, quality=90)
        paths.append(path)
    return paths


def rows(out: str) -> dict[str, str]:
    """The table's rows by file: {file: the rest of the line}."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if HEADER in line) + 1
    end = next(i for i in range(start, len(lines)) if " read" in lines[i] and " of " in lines[i])
    return {line.split("  ")[0].strip(): line for line in lines[start:end]}


@pytest.fixture
def run(cnn, capsys, monkeypatch, tmp_path):
    """main(argv) in this process with the cached CNN: (exit status, stdout, stderr); checks tmp_path/in unchanged."""
    monkeypatch.setattr(predict, "course_cnn", lambda: (cnn, {}))
    (tmp_path / "in").mkdir(exist_ok=True)

    def call(*argv) -> tuple[int, str, str]:
        before = custom.tree_fingerprint(tmp_path / "in")
        capsys.readouterr()
        code = predict.main([str(a) for a in argv])
        out, err = capsys.readouterr()
        assert custom.tree_fingerprint(tmp_path / "in") == before, "an input was modified"
        return code, out, err

    return call


def assert_read(row: str, label: int) -> None:
    """A table row that reads the right digit."""
    assert row.split()[1] == str(label) and row.split()[2].endswith("%"), row


# ---------------------------------------------------------------- files, folders and bad input


def test_good_files_are_read_and_exit_0(run, digits, tmp_path):
    x, y = digits
    paths = save_digits(tmp_path / "in", x[:2], y[:2])
    code, out, err = run(*paths)
    table = rows(out)
    assert code == 0 and HEADER in out and "2 of 2 read" in out and not err
    for path, label in zip(paths, y[:2], strict=True):
        assert_read(table[path.name], label)


def test_a_folder_is_read_recursively(run, digits, tmp_path):
    x, y = digits
    save_digits(tmp_path / "in" / "photos", x[:4], y[:4])
    save_digits(tmp_path / "in" / "photos" / "more", x[4:], y[4:])
    code, out, _ = run(tmp_path / "in" / "photos")
    table = rows(out)
    assert code == 0 and len(table) == 6 and "6 of 6 read" in out
    for name, row in table.items():
        assert name.startswith("photos/")
        assert_read(row, int(name.split("/")[-1][0]))  # the label starts the file name


def test_a_corrupt_file_is_named_and_exit_2(run, digits, tmp_path):
    x, y = digits
    good, corrupt = save_digits(tmp_path / "in", x[:2], y[:2], suffixes=(".png",))
    corrupt.write_bytes(corrupt.read_bytes()[:80])  # a truncated PNG
    code, out, _ = run(good, corrupt)
    table = rows(out)
    assert code == 2 and "1 of 2 read; 1 could not be used" in out
    assert_read(table[good.name], y[0])
    assert "damaged or truncated" in table[corrupt.name]


def test_non_images_are_listed_with_their_reason_and_exit_2(run, digits, tmp_path):
    x, y = digits
    folder = tmp_path / "in" / "mixed"
    save_digits(folder, x[:1], y[:1])
    (folder / "notes.txt").write_text("the sevens were hard")
    (folder / "fake.png").write_text("this is text with an image's name")
    code, out, _ = run(folder)
    table = rows(out)
    assert code == 2 and "1 of 3 read" in out
    assert "not an image file (extension '.txt')" in table["mixed/notes.txt"]
    assert "not an image Pillow can read" in table["mixed/fake.png"]
    code, out, _ = run(folder / "notes.txt")  # named on the command line: tried, and refused by Pillow
    assert code == 2 and "not an image Pillow can read" in rows(out)["notes.txt"]


def test_an_empty_folder_is_reported_without_loading_a_model(run, tmp_path, monkeypatch):
    (tmp_path / "in" / "empty").mkdir()
    monkeypatch.setattr(predict, "load_model", lambda choice: pytest.fail("a model was loaded for no image"))
    code, out, _ = run(tmp_path / "in" / "empty")
    assert code == 2 and "no image files in this folder" in rows(out)["empty/"] and "0 of 1 read" in out


def test_a_blank_page_says_no_ink_and_exit_2(run, tmp_path):
    noise = np.random.default_rng(0).normal(245, 2, (300, 220))  # white paper, faint sensor noise
    Image.fromarray(np.clip(noise, 0, 255).astype(np.uint8)).save(tmp_path / "in" / "blank.png")
    code, out, _ = run(tmp_path / "in" / "blank.png")
    assert code == 2 and "no ink found" in rows(out)["blank.png"]


def test_a_photo_with_two_digits_is_reported_and_exit_2(run, digits, tmp_path):
    x, _ = digits
    page = Image.new("L", (460, 240), 255)
    page.paste(paper(x[0], margin=20), (20, 20))
    page.paste(paper(x[1], margin=20), (240, 20))  # two digits side by side, 40 px apart
    page.save(tmp_path / "in" / "two.png")
    code, out, _ = run(tmp_path / "in" / "two.png")
    row = rows(out)["two.png"].lower()
    assert code == 2 and "digit" in row and ("more than one" in row or "several" in row), row


# ---------------------------------------------------------------- the contact sheet


def test_the_sheet_is_written_where_asked_and_never_over_an_input(run, digits, tmp_path):
    x, y = digits
    paths = save_digits(tmp_path / "in", x[:3], y[:3])
    sheet = tmp_path / "out" / "new" / "sheet.png"  # its folders do not exist yet
    code, out, _ = run(*paths, "--sheet", sheet)
    assert code == 0 and f"contact sheet: {sheet}" in out
    with Image.open(sheet) as picture:
        assert picture.format == "PNG" and min(picture.size) > 100
    assert [p.name for p in sheet.parent.iterdir()] == ["sheet.png"]  # no temporary file left behind
    refused = [(paths, paths[0]), ([tmp_path / "in"], tmp_path / "in" / "sub" / "sheet.png"),
               (paths, tmp_path / "out" / "sheet.txt")]  # an input file, inside an input folder, not an image type
    for inputs, target in refused:
        code, out, err = run(*inputs, "--sheet", target)
        assert code == 2 and f"--sheet {target}" in err and not out, err
    assert not (tmp_path / "out" / "sheet.txt").exists()


def test_no_sheet_when_nothing_could_be_read(run, tmp_path):
    (tmp_path / "in" / "fake.png").write_text("no image")
    code, _, err = run(tmp_path / "in" / "fake.png", "--sheet", tmp_path / "out" / "sheet.png")
    assert code == 2 and "no contact sheet" in err and not (tmp_path / "out").exists()


# ---------------------------------------------------------------- the command line and the model


def test_help_documents_columns_exit_status_and_examples(capsys):
    with pytest.raises(SystemExit) as stop:
        predict.main(["--help"])
    out = capsys.readouterr().out
    assert stop.value.code == 0
    for words in ("runner-up", "prob.", "Exit status: 0 if every file was read; 2 otherwise", "phone photo",
                  "--sheet", "a folder", "--model"):
        assert words in out, words


def test_a_bad_command_line_exits_2(capsys, tmp_path):
    for argv in ([], ["a.png", "--model", "resnet"], ["a.png", "--model", str(tmp_path / "missing.pt")]):
        with pytest.raises(SystemExit) as stop:
            predict.main(argv)
        assert stop.value.code == 2
    assert "neither a course model (cnn) nor an existing .pt file" in capsys.readouterr().err


def test_a_saved_course_cnn_is_loaded_from_its_file(run, cnn, digits, tmp_path):
    import torch

    x, y = digits
    paths = save_digits(tmp_path / "in", x[:3], y[:3])
    saved = tmp_path / "models" / "mine.pt"
    saved.parent.mkdir()
    torch.save(cnn.state_dict(), saved)
    assert run(*paths, "--model", saved)[1] == run(*paths)[1]  # the same weights: the same table
    saved.with_suffix(".json").write_text(json.dumps({"sha256": "0" * 64}))
    code, out, err = run(*paths, "--model", saved)
    assert code == 2 and "checksum differs from mine.json" in err and not out
    other = tmp_path / "models" / "other.pt"
    torch.save(torch.nn.Linear(784, 10).state_dict(), other)  # another network's weights
    text = tmp_path / "models" / "text.pt"
    text.write_text("not a checkpoint")
    for bad in (other, text):
        code, _, err = run(*paths, "--model", bad)
        assert code == 2 and f"{bad.name}: not the weights of a course CNN" in err, err


def test_the_first_run_says_it_trains_and_how_long(tmp_path, monkeypatch, capsys, digits):
    """Nothing cached (an empty data folder): the message, its estimate and the result; training is faked."""
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data"))
    calls = []

    def fake_cached_model(name, key, build, fit, retrain=False):
        calls.append(name)  # `fit` (which would train for minutes) is never called
        return build().eval(), {"train_seconds": 1.0}

    monkeypatch.setattr(recipes, "cached_model", fake_cached_model)
    path = save_digits(tmp_path / "in", digits[0][:1], digits[1][:1])[0]
    assert predict.main([str(path)]) == 0 and calls == ["ch08_cnn"]
    out, err = capsys.readouterr()
    assert "Training Chapter 8's CNN once" in err and "a few minutes" in err and "trained in 1 s" in err
    assert "Training" not in out  # messages on stderr, the table on stdout
    recipe = recipes.pretrained_recipe()
    earlier = {"key": {"recipe": asdict(recipe), "code": "an older version"}, "train_seconds": 182.2}
    (tmp_path / "data" / "models").mkdir(exist_ok=True)
    (tmp_path / "data" / "models" / "ch08_cnn-0123456789.json").write_text(json.dumps(earlier))
    assert predict.main([str(path)]) == 0
    assert "about 3 min here: the last training took 182 s" in capsys.readouterr().err


def test_the_module_runs_as_a_command(cnn, digits, tmp_path):
    """A real `python -m helpers.predict` process: the table on stdout, a sheet, and the exit status."""
    x, y = digits
    folder = tmp_path / "in"
    save_digits(folder, x[:2], y[:2])
    (folder / "broken.png").write_bytes((folder / f"{y[0]}_0.png").read_bytes()[:80])  # a truncated copy
    before = custom.tree_fingerprint(folder)
    nice = ["nice", "-n", "19"] if shutil.which("nice") else []
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run([*nice, sys.executable, "-m", "helpers.predict", str(folder), "--sheet",
                           str(tmp_path / "sheet.png")], capture_output=True, text=True, env=env, timeout=300,
                          cwd=helpers.repo_root())
    table = rows(done.stdout)
    assert done.returncode == 2 and "2 of 3 read" in done.stdout, done.stdout + done.stderr
    assert_read(table[f"in/{y[0]}_0.png"], y[0])
    assert "damaged or truncated" in table["in/broken.png"]
    assert (tmp_path / "sheet.png").stat().st_size > 0 and custom.tree_fingerprint(folder) == before
