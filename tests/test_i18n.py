"""The Chinese edition (scripts/i18n.py): notebooks/zh/ is exactly what the generator writes from the English
notebooks and the PO files; the same code, ids and outputs; complete chapters fully translated, with the same
numbers, inline code, maths and glossary terms as the English; and a changed English cell comes back fuzzy."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat
import polib
import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("i18n", ROOT / "scripts" / "i18n.py")
i18n = importlib.util.module_from_spec(spec)
spec.loader.exec_module(i18n)

ENGLISH = i18n.notebooks()
# Chapters whose translation is finished: no fuzzy and no untranslated entry may remain in them. All of them now;
# a chapter in progress can be left out of this list while it is being translated.
COMPLETE = [p.stem for p in ENGLISH]  # every chapter and appendix


def test_every_cell_has_a_unique_id():
    for path in ENGLISH:
        ids = [c.id for c in nbformat.read(path, as_version=4).cells]
        assert all(ids) and len(ids) == len(set(ids)), f"{path.name}: missing or repeated cell ids"


@pytest.mark.parametrize("path", ENGLISH, ids=[p.stem for p in ENGLISH])
def test_chinese_notebook_is_what_the_generator_writes(path):
    chinese = i18n.CHINESE / path.name
    assert chinese.exists(), f"{chinese.name} missing: run `make zh`"
    expected = i18n.build(path, i18n.po_path(path))
    assert nbformat.read(chinese, as_version=4) == expected, f"{chinese.name} is stale or edited by hand: `make zh`"


@pytest.mark.parametrize("path", ENGLISH, ids=[p.stem for p in ENGLISH])
def test_same_code_ids_and_outputs(path):
    english = nbformat.read(path, as_version=4).cells
    chinese = nbformat.read(i18n.CHINESE / path.name, as_version=4).cells
    assert [(c.id, c.cell_type) for c in english] == [(c.id, c.cell_type) for c in chinese]
    for en, zh in zip(english, chinese, strict=True):
        if en.cell_type == "code":
            assert (en.source, en.outputs, en.execution_count) == (zh.source, zh.outputs, zh.execution_count), en.id


def test_po_files_are_up_to_date_with_the_english():
    for path in ENGLISH:
        po_file = i18n.po_path(path)
        assert po_file.exists(), f"{po_file.name} missing: run `python scripts/i18n.py extract`"
        current = {e.msgctxt: e.msgid for e in polib.pofile(str(po_file)) if not e.obsolete}
        cells = {c.id: c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown"}
        assert current == cells, f"{po_file.name} lags behind {path.name}: run `python scripts/i18n.py extract`"


@pytest.mark.parametrize("name", COMPLETE)
def test_complete_chapter_is_fully_translated_and_faithful(name):
    po = polib.pofile(str(i18n.PO_DIR / f"{name}.po"))
    assert i18n.counts(po) == {"translated": len([e for e in po if not e.obsolete]), "fuzzy": 0, "untranslated": 0}
    glossary = i18n.load_glossary()
    found = [f"{e.msgctxt}: {p}" for e in po if not e.obsolete for p in i18n.problems(e.msgid, e.msgstr, glossary)]
    assert not found, "\n".join(found)


def test_complete_chapters_read_as_chinese():
    for name in COMPLETE:
        nb = nbformat.read(i18n.CHINESE / f"{name}.ipynb", as_version=4)
        assert i18n.cjk_share(nb) > 0.5, f"{name}: only {i18n.cjk_share(nb):.0%} of the prose is Chinese"


def test_the_checks_find_what_differs():
    glossary = i18n.load_glossary()
    english = "The learning rate is 3e-3 for 60,000 images; call `fit()` with $\\eta$."
    good = "学习率为 3e-3，共 60000 张图像；用 $\\eta$ 调用 `fit()`。"
    assert i18n.problems(english, good, glossary) == []
    assert any("numbers" in p for p in i18n.problems(english, good.replace("60000", "6000"), glossary))
    assert any("inline code" in p for p in i18n.problems(english, good.replace("`fit()`", "fit()"), glossary))
    assert any("maths" in p for p in i18n.problems(english, good.replace("$\\eta$", "η"), glossary))
    assert any("学习率" in p for p in i18n.problems(english, good.replace("学习率", "步长"), glossary))
    assert i18n.numbers("see [the page](https://x.org/2024) and `a[3]`: 1,234.5") == ["1234.5"]
    assert i18n.numbers("340 million and 1.2 billion") == i18n.numbers("3.4亿和12亿") == ["1200000000", "340000000"]
    assert i18n.numbers("60 thousand") == i18n.numbers("6万") != i18n.numbers("60")
    assert i18n.numbers("in November 2017, on 12 September 2022") == i18n.numbers("2017年11月，2022年9月12日")
    assert i18n.numbers("May we add") == []


def notebook_with(tmp_path: Path, *texts: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(t) for t in texts] + [nbformat.v4.new_code_cell("print(1)")]
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell{i}"
    path = tmp_path / "ch99_demo.ipynb"
    nbformat.write(nb, path)
    return path


def test_a_changed_english_cell_comes_back_fuzzy_and_the_build_shows_the_english(tmp_path):
    path = notebook_with(tmp_path, "# Title", "Ten epochs.", "Gone soon.")
    po_file = tmp_path / "ch99_demo.po"
    po = i18n.extract(path, po_file)
    for entry, chinese in zip(po, ["# 标题", "十轮。", "很快删除。"], strict=True):
        entry.msgstr = chinese
    po.save(str(po_file))
    assert [c.source for c in i18n.build(path, po_file).cells[:3]] == ["# 标题", "十轮。", "很快删除。"]

    nb = nbformat.read(path, as_version=4)
    nb.cells[1].source = "Twelve epochs."
    del nb.cells[2]
    nbformat.write(nb, path)
    po = i18n.extract(path, po_file)
    po.save(str(po_file))
    changed = next(e for e in po if e.msgctxt == "cell1")
    assert "fuzzy" in changed.flags and changed.previous_msgid == "Ten epochs." and changed.msgstr == "十轮。"
    assert [e.msgctxt for e in po if e.obsolete] == ["cell2"]
    assert i18n.counts(po) == {"translated": 1, "fuzzy": 1, "untranslated": 0}
    assert [c.source for c in i18n.build(path, po_file).cells[:2]] == ["# 标题", "Twelve epochs."]

    changed.msgstr, changed.flags = "十二轮。", []
    po.save(str(po_file))
    built = i18n.build(path, po_file)
    assert [c.source for c in built.cells[:2]] == ["# 标题", "十二轮。"] and built.cells[2].source == "print(1)"
