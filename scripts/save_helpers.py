"""d2l's `#@save` for this course: a chapter's code cells tagged `save` become a module later chapters import.

    python scripts/save_helpers.py           # write helpers/saved/chNN.py for every notebook with tagged cells
    python scripts/save_helpers.py --check   # exit 1, naming the module, if any differs from its notebook

A chapter teaches an idea in its own cells, where the reader sees it; when later chapters need it, the cell
carries the nbformat cell tag `save` (JupyterLab: the property inspector, "Cell Tags"). This script copies every
tagged cell of notebooks/chNN_*.ipynb, in order, into helpers/saved/chNN.py, with the imports those cells use taken
from the notebook's own import lines. A tagged cell holds definitions only (imports, functions, classes,
constants); its demonstrations go in the next cell. The generated file says where it comes from, and a test
fails when it differs from what this script writes: edit the notebook, then run `make helpers`.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
SAVED = ROOT / "helpers" / "saved"
TAG = "save"
ALLOWED = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef, ast.Assign, ast.AnnAssign, ast.Expr)


class SaveError(ValueError):
    """A tagged cell that cannot become module code; the message names the notebook and the cell."""


def tagged_cells(notebook: Path) -> list[tuple[str, str]]:
    """(cell id, source) of the code cells tagged `save`, in notebook order."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return [(c.get("id", "?"), "".join(c["source"]).strip()) for c in cells
            if c["cell_type"] == "code" and TAG in c.get("metadata", {}).get("tags", [])]


def notebook_imports(notebook: Path) -> dict[str, str]:
    """Every name the notebook's import lines bind, mapped to one import statement for that name alone."""
    found: dict[str, str] = {}
    for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] != "code":
            continue
        try:
            tree = ast.parse("".join(line for line in cell["source"] if not line.lstrip().startswith(("%", "!"))))
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.Import):
                for a in node.names:
                    found.setdefault(a.asname or a.name.split(".")[0],
                                     f"import {a.name}" + (f" as {a.asname}" if a.asname else ""))
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for a in node.names:
                    found.setdefault(a.asname or a.name, f"from {node.module} import {a.name}"
                                     + (f" as {a.asname}" if a.asname else ""))
    return found


def names_used_and_defined(tree: ast.Module) -> tuple[set[str], set[str]]:
    """(names a module reads, names its top level defines): what its imports must supply is the difference."""
    used, defined = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (used if isinstance(node.ctx, ast.Load) else defined).add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef):
            defined.add(node.name)
        elif isinstance(node, ast.arg):
            defined.add(node.arg)
        elif isinstance(node, ast.alias):
            defined.add(node.asname or node.name.split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            defined.add(node.name)
    return used, defined


def module_text(notebook: Path) -> str | None:
    """The generated module for one notebook, or None when it has no tagged cells."""
    cells = tagged_cells(notebook)
    if not cells:
        return None
    for cell_id, source in cells:
        try:
            tree = ast.parse(source)
        except SyntaxError as err:
            raise SaveError(f"{notebook.name}, cell {cell_id}: not valid Python ({err.msg})") from None
        for node in tree.body:
            docstring = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            if not isinstance(node, ALLOWED) or (isinstance(node, ast.Expr) and not docstring):
                raise SaveError(f"{notebook.name}, cell {cell_id}, line {node.lineno}: a `save` cell holds "
                                "definitions only; move this statement to the next cell")
    body = "\n\n\n".join(source for _, source in cells)
    used, defined = names_used_and_defined(ast.parse(body))
    available = notebook_imports(notebook)
    missing = sorted(n for n in used - defined if n not in available and not hasattr(builtins, n))
    if missing:
        raise SaveError(f"{notebook.name}: the `save` cells use {', '.join(missing)}, which no import line and no "
                        "saved cell defines; define them in a tagged cell")
    imports = sorted({available[n] for n in used - defined if n in available})
    title = next((line.lstrip("# ").strip() for line in json.loads(notebook.read_text(encoding="utf-8"))["cells"][0]
                  ["source"] if line.startswith("# ")), notebook.stem)
    chinese, _, english = title.partition(" · ")
    header = (f'"""The code {english.split(":")[0] or notebook.stem} teaches, saved for later chapters ({chinese}).\n\n'
              f"Generated from notebooks/{notebook.name} (its cells tagged `save`) by scripts/save_helpers.py.\n"
              'Do not edit: change the notebook, then run `make helpers`.\n"""\n\n'
              "from __future__ import annotations\n\n")
    return header + "\n".join(imports) + "\n\n\n" + body + "\n"


def formatted(text: str, name: str) -> str:
    """The module with its imports sorted as ruff (the course's linter) wants them."""
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--select", "I", "--fix", "--quiet",
                             "--stdin-filename", str(SAVED / name), "-"], input=text, capture_output=True,
                            text=True, cwd=ROOT)
    return result.stdout if result.returncode == 0 and result.stdout else text


def generated() -> tuple[dict[str, str], list[str]]:
    """({module file name: text} for every chapter notebook with tagged cells, [problems])."""
    out, problems = {}, []
    for notebook in sorted(NOTEBOOKS.glob("ch*.ipynb")):
        name = notebook.stem.split("_")[0] + ".py"
        try:
            text = module_text(notebook)
        except SaveError as err:
            problems.append(str(err))
            out[name] = None  # keep the module as it is
            continue
        if text is not None:
            out[name] = formatted(text, name)
    return out, problems


def main() -> int:
    """Write the generated modules, or with --check report any that differ."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 if a module is out of date")
    args = parser.parse_args()
    modules, problems = generated()
    for problem in problems:
        print(f"save_helpers: {problem}", file=sys.stderr)
    stale = [name for name, text in modules.items() if text is not None
             and (not (SAVED / name).exists() or (SAVED / name).read_text(encoding="utf-8") != text)]
    extra = [p.name for p in SAVED.glob("ch*.py") if p.name not in modules]
    if args.check:
        for name in stale + extra:
            print(f"helpers/saved/{name} differs from its notebook: run `make helpers`", file=sys.stderr)
        return 1 if stale or extra or problems else 0
    SAVED.mkdir(parents=True, exist_ok=True)
    init = SAVED / "__init__.py"
    if not init.exists():
        init.write_text('"""Code the chapters teach, generated from their notebooks (scripts/save_helpers.py)."""\n')
    for name in stale:
        (SAVED / name).write_text(modules[name], encoding="utf-8")
        print(f"wrote helpers/saved/{name}")
    for name in extra:
        (SAVED / name).unlink()
        print(f"removed helpers/saved/{name} (its notebook has no `save` cells)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
