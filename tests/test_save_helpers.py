"""scripts/save_helpers.py, the course's single source: cells tagged `save` become helpers/saved/chNN.py."""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("save_helpers", ROOT / "scripts" / "save_helpers.py")
save_helpers = importlib.util.module_from_spec(spec)
spec.loader.exec_module(save_helpers)


def notebook(tmp_path: Path, *cells: tuple[str, str, bool]) -> Path:
    """A minimal chNN notebook of (cell type, source, tagged `save`) cells after a title cell."""
    body = [{"cell_type": "markdown", "id": "t", "metadata": {}, "source": ["# 第9章 书名 · Chapter 9: A test"]}]
    for i, (kind, source, save) in enumerate(cells):
        body.append({"cell_type": kind, "id": f"c{i}", "metadata": {"tags": ["save"]} if save else {},
                     "source": source.splitlines(keepends=True), **({"outputs": [], "execution_count": None}
                                                                    if kind == "code" else {})})
    path = tmp_path / "ch09_test.ipynb"
    path.write_text(json.dumps({"cells": body, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def test_every_generated_module_equals_its_notebook():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "save_helpers.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_tagged_cells_become_a_module_with_only_the_imports_they_use(tmp_path):
    area = 'def area(r: float) -> float:\n    """Area of a circle."""\n    return math.pi * r**2'
    path = notebook(tmp_path, ("code", "import math\nimport numpy as np\nimport torch\n\nseed = 1", False),
                    ("code", area, True),
                    ("code", "print(area(2))", False),
                    ("code", "def grid(n: int) -> np.ndarray:\n    return np.zeros((n, n))", True))
    text = save_helpers.module_text(path)
    tree = ast.parse(text)
    imports = [ast.unparse(node) for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
    assert imports == ["from __future__ import annotations", "import math", "import numpy as np"]  # not torch
    assert [n.name for n in tree.body if isinstance(n, ast.FunctionDef)] == ["area", "grid"]
    assert "Generated from notebooks/ch09_test.ipynb" in text and "print(" not in text
    namespace = {}
    exec(compile(text, "ch09", "exec"), namespace)
    assert namespace["area"](1) == pytest.approx(3.14159, abs=1e-5)


def test_a_tagged_cell_that_runs_code_or_uses_an_undefined_name_is_refused(tmp_path):
    with pytest.raises(save_helpers.SaveError, match="definitions only"):
        save_helpers.module_text(notebook(tmp_path, ("code", "x = 1\nprint(x)", True)))
    with pytest.raises(save_helpers.SaveError, match="THRESHOLD"):
        save_helpers.module_text(notebook(tmp_path, ("code", "def f(x):\n    return x > THRESHOLD", True)))


def test_a_notebook_without_tagged_cells_has_no_module(tmp_path):
    assert save_helpers.module_text(notebook(tmp_path, ("code", "def f():\n    return 1", False))) is None
