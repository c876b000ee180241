"""The Chinese edition: translations in gettext PO files, notebooks/zh/ generated from them.

    python scripts/i18n.py extract        # English markdown -> i18n/zh/<notebook>.po (new, changed -> fuzzy, gone)
    python scripts/i18n.py build          # notebooks/<name>.ipynb + i18n/zh/<name>.po -> notebooks/zh/<name>.ipynb
    python scripts/i18n.py status         # per notebook: translated, fuzzy, untranslated, CJK share
    python scripts/i18n.py check ch06     # what a translator must fix: numbers, code, maths, glossary terms

Every markdown cell of an English notebook is one PO entry: msgctxt is the cell's nbformat id, msgid its English
text, msgstr the Chinese. When the English of a cell changes, `extract` marks the entry fuzzy and keeps the old
English as its previous msgid (what `msgmerge --previous` does), so a translator sees what changed; the build then
uses the English text for that cell until the translation is updated and the fuzzy flag removed. Code cells, their
ids and their outputs are copied unchanged: the two editions run the same code.
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path

import nbformat
import polib

ROOT = Path(__file__).resolve().parent.parent
ENGLISH = ROOT / "notebooks"
PO_DIR = ROOT / "i18n" / "zh"
CHINESE = ENGLISH / "zh"
HEADER = {"Project-Id-Version": "mnist-course", "Language": "zh_CN", "MIME-Version": "1.0",
          "Content-Type": "text/plain; charset=UTF-8", "Content-Transfer-Encoding": "8bit"}
GLOSSARY = PO_DIR / "glossary.tsv"
CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
CODE = re.compile(r"```.*?```|`[^`\n]+`", re.S)  # fenced blocks and inline code
MATH = re.compile(r"\$\$.*?\$\$|\$[^$]+\$", re.S)  # an inline span may wrap onto the next line
LINK = re.compile(r"\]\([^)]*\)|https?://\S+")  # link targets and bare URLs
NUMBER = re.compile(r"(\d+(?:,\d{3})*(?:\.\d+)?)(?:[\s-]?(thousand|million|billion|trillion)\b|\s?(万|亿))?")
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
MONTH = re.compile(rf"\b({'|'.join(MONTHS)})(?=,?\s+\d)|(?<=\d\s)({'|'.join(MONTHS)})\b")  # beside a day or year
SCALE = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12, "万": 1e4, "亿": 1e8}


def notebooks(names: list[str] | None = None, folder: Path = ENGLISH) -> list[Path]:
    """The English notebooks, all or those whose names contain one of `names`."""
    paths = sorted(folder.glob("*.ipynb"))
    return [p for p in paths if not names or any(n in p.stem for n in names)]


def po_path(notebook: Path, po_dir: Path = PO_DIR) -> Path:
    """Where a notebook's translations live: i18n/zh/<notebook name>.po."""
    return po_dir / f"{notebook.stem}.po"


def extract(notebook: Path, po_file: Path) -> polib.POFile:
    """Bring a notebook's PO file up to date with its English markdown cells, in notebook order."""
    old = polib.pofile(str(po_file)) if po_file.exists() else polib.POFile()
    by_id = {e.msgctxt: e for e in old if not e.obsolete}
    po = polib.POFile(wrapwidth=0)
    po.metadata = HEADER
    cells = [c for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "markdown"]
    for cell in cells:
        entry = by_id.pop(cell.id, None)
        if entry is None:
            entry = polib.POEntry(msgctxt=cell.id, msgid=cell.source, msgstr="")
        elif entry.msgid != cell.source:
            if entry.msgstr and "fuzzy" not in entry.flags:
                entry.flags.append("fuzzy")
                entry.previous_msgid = entry.msgid
            entry.msgid = cell.source
        po.append(entry)
    for entry in by_id.values():  # cells that are gone: kept at the end, commented out, as gettext does
        entry.obsolete = True
        po.append(entry)
    return po


def translation(entry: polib.POEntry | None) -> str | None:
    """The Chinese text of an entry, or None when there is none yet or it is fuzzy."""
    if entry is None or not entry.msgstr or "fuzzy" in entry.flags or entry.obsolete:
        return None
    return entry.msgstr


def build(notebook: Path, po_file: Path) -> nbformat.NotebookNode:
    """The Chinese notebook: the English one with every translated markdown cell in Chinese."""
    nb = copy.deepcopy(nbformat.read(notebook, as_version=4))
    entries = {e.msgctxt: e for e in polib.pofile(str(po_file))} if po_file.exists() else {}
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            entry = entries.get(cell.id)
            text = translation(entry) if entry is not None and entry.msgid == cell.source else None
            cell.source = text if text is not None else cell.source
    nb.metadata["language"] = "zh-CN"
    return nb


def cjk_share(nb: nbformat.NotebookNode) -> float:
    """Share of the markdown's letters that are Chinese characters (English words counted as letters)."""
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    text = re.sub(r"`[^`]*`|\$[^$]*\$|\(http[^)]*\)", "", text)  # code, maths and links are not prose
    cjk, latin = len(CJK.findall(text)), len(re.findall(r"[A-Za-z]", text))
    return cjk / max(1, cjk + latin)


def counts(po: polib.POFile) -> dict[str, int]:
    """Entries translated, fuzzy and untranslated (obsolete ones not counted)."""
    live = [e for e in po if not e.obsolete]
    fuzzy = sum("fuzzy" in e.flags for e in live)
    done = sum(bool(e.msgstr) and "fuzzy" not in e.flags for e in live)
    return {"translated": done, "fuzzy": fuzzy, "untranslated": len(live) - done - fuzzy}


def prose(text: str) -> str:
    """The text without code, maths and link targets: what a translator translates."""
    return LINK.sub("]", MATH.sub(" ", CODE.sub(" ", text)))


def numbers(text: str) -> list[str]:
    """The numbers in the prose, sorted, as values: 60,000 = 60000, 340 million = 3.4亿 = 340000000, and a month
    beside a date is its number (November 2017 = 2017年11月)."""
    values = [str(MONTHS.index(a or b) + 1) for a, b in MONTH.findall(prose(text))]
    for digits, word, chinese in NUMBER.findall(prose(text)):
        digits = digits.replace(",", "")
        scale = SCALE.get(word or chinese)
        values.append(f"{float(digits) * scale:.12g}" if scale else digits)
    return sorted(values)


def load_glossary(path: Path = GLOSSARY) -> list[tuple[re.Pattern, list[str]]]:
    """(pattern matching the English forms as whole words, accepted Chinese forms) per glossary line."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        english, chinese = line.split("\t")[:2]
        forms = "|".join(re.escape(f) for f in english.split("|"))
        rows.append((re.compile(rf"(?<![\w-])(?:{forms})(?![\w-])", re.I), chinese.split("|")))
    return rows


def spans(pattern: re.Pattern, text: str) -> list[str]:
    """The code or maths spans of a text, sorted, with runs of white space (a wrapped line) read as one space."""
    return sorted(re.sub(r"\s+", " ", m) for m in pattern.findall(text))


def problems(english: str, chinese: str, glossary: list[tuple[re.Pattern, list[str]]]) -> list[str]:
    """What differs between a cell and its translation beyond the language: numbers, code, maths, terms."""
    found = []
    if numbers(english) != numbers(chinese):
        found.append(f"numbers differ: {numbers(english)} vs {numbers(chinese)}")
    if spans(CODE, english) != spans(CODE, chinese):
        found.append("inline code differs")
    if spans(MATH, CODE.sub(" ", english)) != spans(MATH, CODE.sub(" ", chinese)):
        found.append("maths differs")
    text = prose(english)
    for pattern, forms in glossary:
        if pattern.search(text) and not any(f in chinese for f in forms):
            found.append(f"glossary: '{pattern.search(text).group(0)}' needs {' or '.join(forms)}")
    return found


def write_notebook(nb: nbformat.NotebookNode, path: Path) -> None:
    """Write a notebook atomically (a temporary file, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    nbformat.write(nb, tmp)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    """extract, build or status for all notebooks or the named ones."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["extract", "build", "status", "check"])
    parser.add_argument("names", nargs="*", help="parts of notebook names (default: all)")
    args = parser.parse_args(argv)
    PO_DIR.mkdir(parents=True, exist_ok=True)
    for notebook in notebooks(args.names):
        po_file = po_path(notebook)
        if args.command == "extract":
            po = extract(notebook, po_file)
            tmp = po_file.with_suffix(".tmp")
            tmp.write_text(str(po), encoding="utf-8")
            tmp.replace(po_file)
            print(f"{po_file.relative_to(ROOT)}: {counts(po)}")
        elif args.command == "build":
            out = CHINESE / notebook.name
            write_notebook(build(notebook, po_file), out)
            print(f"{out.relative_to(ROOT)}")
        elif args.command == "check":
            glossary = load_glossary()
            for entry in polib.pofile(str(po_file)):
                if entry.msgstr and not entry.obsolete:
                    for problem in problems(entry.msgid, entry.msgstr, glossary):
                        print(f"{po_file.name} {entry.msgctxt}: {problem}")
        else:
            po = polib.pofile(str(po_file)) if po_file.exists() else polib.POFile()
            share = cjk_share(build(notebook, po_file))
            print(f"{notebook.stem:<30} {counts(po)}  Chinese share of the prose {share:.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
