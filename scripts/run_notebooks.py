"""Execute the course's notebooks in order and print a per-chapter table (status, wall time).

    python scripts/run_notebooks.py                 # every notebook -> build/ (executed copy + HTML)
    python scripts/run_notebooks.py --inplace ch02  # refresh one notebook's saved outputs in notebooks/

The run mode comes from COURSE_MODE (full by default). Exits non-zero if a chapter fails, naming the cell.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
KERNEL = {"name": "mnist-course", "display_name": "Python 3 (mnist-course)", "language": "python"}


def ordered(names: list[str]) -> list[Path]:
    """The notebooks to run: chapters first (ch01, ch02, …), then the appendices; filtered by name parts."""
    paths = sorted(p for p in NOTEBOOKS.glob("*.ipynb"))
    paths.sort(key=lambda p: (not p.name.startswith("ch"), p.name))
    if names:
        paths = [p for p in paths if any(n in p.name for n in names)]
    return paths


def failing_cell(nb: nbformat.NotebookNode) -> str:
    """'cell N' (1-based among code cells) of the first error output, with its first source line."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    for i, cell in enumerate(code, 1):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                first = next((line for line in cell.source.splitlines() if line.strip()), "")
                return f"code cell {i} ({first[:60]!r}): {out.get('ename')}: {out.get('evalue', '')[:200]}"
    return "unknown cell"


def run(path: Path, out_dir: Path | None, inplace: bool, html: bool, timeout: int) -> tuple[bool, float, str]:
    """Execute one notebook in a fresh kernel (working folder notebooks/); return (ok, seconds, message)."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    start = time.perf_counter()
    ok, message = True, ""
    try:
        client.execute()
    except CellExecutionError:
        ok, message = False, failing_cell(nb)
    except Exception as err:  # a dead kernel or a timeout: still report the chapter, then go on
        ok, message = False, f"{type(err).__name__}: {str(err)[:300]}"
    seconds = time.perf_counter() - start
    nb.metadata["kernelspec"] = KERNEL
    if inplace and ok:
        nbformat.write(nb, path)
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out_dir / path.name)
        if html:
            from nbconvert import HTMLExporter

            body, _ = HTMLExporter().from_notebook_node(nb)
            (out_dir / path.with_suffix(".html").name).write_text(body, encoding="utf-8")
    return ok, seconds, message


def main() -> int:
    """Run the notebooks named (or all), print the table, exit 1 if any failed."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="parts of notebook names to run (default: all)")
    parser.add_argument("--out", type=Path, default=ROOT / "build", help="folder for executed copies (default build/)")
    parser.add_argument("--inplace", action="store_true", help="save outputs back into notebooks/ (when it passes)")
    parser.add_argument("--html", action="store_true", help="also write HTML next to the executed copies")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell")
    args = parser.parse_args()

    from helpers import mode

    paths = ordered(args.names)
    if not paths:
        print("no notebooks match", args.names, file=sys.stderr)
        return 1
    rows = []
    for path in paths:
        print(f"running {path.name} ({mode()} mode) …", flush=True)
        ok, seconds, message = run(path, args.out, args.inplace, args.html, args.timeout)
        rows.append((path.stem, "ok" if ok else "FAILED", seconds, message))
        print(f"  {'ok' if ok else 'FAILED'} in {seconds:.0f} s {message}", flush=True)
    width = max(len(r[0]) for r in rows)
    print(f"\n{'chapter':<{width}}  status  wall time   ({mode()} mode)")
    for name, status, seconds, message in rows:
        print(f"{name:<{width}}  {status:<6}  {seconds:7.1f} s  {message}")
    print(f"{'total':<{width}}          {sum(r[2] for r in rows):7.1f} s")
    failed = [r for r in rows if r[1] != "ok"]
    for name, _, _, message in failed:
        print(f"FAILED: {name}: {message}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
