"""Where each chapter's time goes: per-notebook totals and the slowest cells, from the cell timings that
nbclient stores in executed notebooks (make course writes them to build/, make outputs to notebooks/).

    python scripts/timings.py                  # the notebooks' saved outputs (notebooks/)
    python scripts/timings.py --dir build      # the copies executed by the last `make course`
    python scripts/timings.py --top 5          # five slowest cells per chapter
    python scripts/timings.py --dir build --dir build-avx2 --top 0   # two runs side by side (a Markdown table)
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cell_seconds(cell: dict) -> float | None:
    """Seconds from the kernel receiving a code cell to its reply, or None when the cell carries no timing."""
    timing = cell.get("metadata", {}).get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not start or not end:
        return None
    parse = lambda stamp: datetime.fromisoformat(stamp.replace("Z", "+00:00"))  # noqa: E731
    return (parse(end) - parse(start)).total_seconds()


def describe(source: str) -> str:
    """What a cell does, in a few words: its first definition or loop, else its first statement that is not set-up."""
    lines = [line.strip() for line in source.splitlines() if line.strip()]
    skip = ("#", "import ", "from ", "seed_everything(", "torch.manual_seed(", "helpers.", "print(")
    for prefixes in (("def ", "class ", "for ", "with "), ()):
        for line in lines:
            if line.startswith(prefixes) if prefixes else not line.startswith(skip):
                return line[:70]
    return lines[0][:70] if lines else "(empty)"


def chapter_rows(path: Path, top: int) -> tuple[float, int, list[tuple[float, str]]]:
    """(total seconds, cells without timing, the `top` slowest (seconds, description)) of one notebook."""
    cells = [c for c in json.loads(path.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]
    timed = [(cell_seconds(c), describe("".join(c["source"]))) for c in cells]
    known = [(s, d) for s, d in timed if s is not None]
    return sum(s for s, _ in known), len(timed) - len(known), sorted(known, reverse=True)[:top]


def main() -> int:
    """Print one block per chapter and the course total (or, for several folders, one table)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, action="append", help="folder of executed notebooks (repeatable)")
    parser.add_argument("--top", type=int, default=3, help="slowest cells to list per chapter")
    args = parser.parse_args()
    folders = args.dir or [ROOT / "notebooks"]
    paths = sorted(folders[0].glob("*.ipynb"), key=lambda p: (not p.name.startswith("ch"), p.name))
    if not paths:
        print(f"no notebooks in {folders[0]}", file=sys.stderr)
        return 1
    if len(folders) > 1:
        print("| chapter | " + " | ".join(f.name for f in folders) + " |")
        print("| --- |" + " ---: |" * len(folders))
        totals = [0.0] * len(folders)
        for path in paths:
            cells = []
            for i, folder in enumerate(folders):
                other = folder / path.name
                seconds = chapter_rows(other, 0)[0] if other.exists() else float("nan")
                totals[i] += seconds
                cells.append(f"{seconds:,.0f} s")
            print(f"| {path.stem} | " + " | ".join(cells) + " |")
        print("| **all** | " + " | ".join(f"**{t:,.0f} s**" for t in totals) + " |")
        return 0
    total = 0.0
    print(f"{'chapter':<24}{'seconds':>9}   slowest cells (seconds, share of the chapter)")
    for path in paths:
        seconds, untimed, slowest = chapter_rows(path, args.top)
        total += seconds
        note = f"  ({untimed} cells without timing)" if untimed else ""
        print(f"{path.stem:<24}{seconds:>9.1f}{note}")
        for cell, what in slowest:
            print(f"{'':<24}{cell:>9.1f}   {cell / seconds:>4.0%}  {what}")
    print(f"{'total':<24}{total:>9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
