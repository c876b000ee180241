"""Hygiene of every notebook: valid, executed top to bottom, no errors, no machine paths, the course's shape."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "notebooks" / "zh").glob("*.ipynb"))
MACHINE_PATH = re.compile(r"(/work/|/root/|/home/\w|/Users/\w|/tmp/|[A-Z]:\\\\Users|\.\./shared)")
TITLE = re.compile(r"^# (第\d+章|附录[A-Z]) .+ · (Chapter \d+|Appendix [A-Z]): .+")
TITLE_ZH = re.compile(r"^# (第\d+章|附录[A-Z]) \S.*")  # the Chinese edition's title: the book's chapter title
HEADINGS = {"Summary": "小结", "Exercises": "练习", "Solutions": "参考答案"}  # the Chinese edition's (d2l-zh's)


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no .ipynb files"


@pytest.fixture(params=NOTEBOOKS, ids=[str(p.relative_to(ROOT / "notebooks").with_suffix("")) for p in NOTEBOOKS])
def notebook(request):
    path = request.param
    return path, nbformat.read(path, as_version=4)


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]


def test_valid_with_kernelspec(notebook):
    path, nb = notebook
    nbformat.validate(nb)
    spec = nb.metadata.get("kernelspec", {})
    assert spec.get("name") == "mnist-course" and spec.get("language") == "python", f"{path.name}: kernelspec {spec}"


def test_executed_top_to_bottom(notebook):
    path, nb = notebook
    counts = [c.execution_count for c in code_cells(nb)]
    assert counts == list(range(1, len(counts) + 1)), f"{path.name}: execution counts {counts}"


def test_no_error_outputs(notebook):
    path, nb = notebook
    for i, cell in enumerate(code_cells(nb), 1):
        for out in cell.outputs:
            assert out.output_type != "error", f"{path.name} code cell {i}: {out.get('ename')}"
            if out.output_type == "stream" and out.name == "stderr":
                assert "Traceback" not in out.text, f"{path.name} code cell {i} printed a traceback"


def test_no_machine_paths(notebook):
    path, nb = notebook
    for i, cell in enumerate(nb.cells, 1):
        texts = [cell.source] + [str(out.get("text", "")) + str(out.get("data", {}).get("text/plain", ""))
                                 for out in cell.get("outputs", [])]
        for text in texts:
            match = MACHINE_PATH.search(text)
            where = text[max(0, match.start() - 40):match.end() + 40] if match else ""
            assert not match, f"{path.name} cell {i} shows a machine path: …{where}…"


def test_course_shape(notebook):
    path, nb = notebook
    first = nb.cells[0]
    title = TITLE_ZH if path.parent.name == "zh" else TITLE
    assert first.cell_type == "markdown" and title.match(first.source), f"{path.name}: title cell {first.source[:80]!r}"
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    for english, chinese in HEADINGS.items():  # a Chinese notebook may still show an untranslated English heading
        assert re.search(rf"^## ({english}|{chinese})\s*$", markdown, re.M), f"{path.name}: no '## {english}' section"
    exercises = re.findall(r"^### (Exercise|练习) ?\d", markdown, re.M)
    assert len(exercises) >= 3, f"{path.name}: fewer than 3 exercises"
    assert "seed_everything(" in "".join(c.source for c in code_cells(nb)[:3]), f"{path.name}: setup cell must seed"
    assert path.stat().st_size < 5_000_000, f"{path.name}: {path.stat().st_size / 1e6:.1f} MB, keep it under 5 MB"
