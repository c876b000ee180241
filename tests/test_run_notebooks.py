"""scripts/run_notebooks.py: a failing chapter is reported with its cell, a passing one is saved with outputs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("run_notebooks", ROOT / "scripts" / "run_notebooks.py")
runner = importlib.util.module_from_spec(spec)
spec.loader.exec_module(runner)


def write(path: Path, *sources: str) -> Path:
    nbformat.write(new_notebook(cells=[new_markdown_cell("# t"), *map(new_code_cell, sources)]), path)
    return path


def test_failing_notebook_names_the_cell_and_passing_one_keeps_outputs(tmp_path):
    bad = write(tmp_path / "ch98_bad.ipynb", "x = 1", "print('before')\n1 / 0", "print('never')")
    ok, seconds, message = runner.run(bad, tmp_path / "out", inplace=True, html=True, timeout=60)
    assert not ok and seconds > 0
    assert "code cell 2" in message and "ZeroDivisionError" in message and "1 / 0" not in message
    assert nbformat.read(bad, 4).cells[2].outputs == [], "a failed run must not overwrite the notebook"
    assert (tmp_path / "out" / "ch98_bad.html").exists()

    good = write(tmp_path / "ch99_good.ipynb", "print(6 * 7)")
    ok, _, message = runner.run(good, None, inplace=True, html=False, timeout=60)
    assert ok and message == ""
    nb = nbformat.read(good, 4)
    assert nb.cells[1].outputs[0]["text"] == "42\n" and nb.cells[1].execution_count == 1
    assert nb.metadata["kernelspec"]["name"] == "mnist-course"


def test_chapters_run_before_appendices():
    names = [p.name for p in runner.ordered([])]
    chapters = [n for n in names if n.startswith("ch")]
    assert names[: len(chapters)] == sorted(chapters)
