"""The drawing pad's latency in a real browser: from the end of a stroke to updated probabilities (DrawPad).

    python scripts/pad_latency.py                      # 30 strokes in Debian's chromium, then a table
    python scripts/pad_latency.py --strokes 50 --chromium /usr/bin/chromium

It starts JupyterLab on a temporary notebook that shows a DrawPad of Chapter 8's cached CNN, opens it in headless
Chromium with Playwright, draws digits with the mouse and reads the time the pad itself shows under the drawing
("updated in … ms after the stroke"): the browser measures it, from the end of the stroke to the moment the new
probabilities are on screen, through the kernel, the preprocessing and the model. Needs Playwright (`pip install
playwright`, its Python package only) and a Chromium (Debian: `apt-get install chromium`); it downloads nothing.
Chapter 8's CNN is trained first if it is not cached (a few minutes).
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import nbformat

PAD_CELL = """from helpers.recipes import pretrained_cnn
from helpers.widgets import DrawPad

model, _ = pretrained_cnn(progress=False)
pad = DrawPad(model)
pad"""
# Strokes as points on the canvas, in shares of its width and height: a 7, a 1 and an L-shaped 4's first stroke.
SHAPES = [[(0.30, 0.25), (0.70, 0.25), (0.45, 0.80)], [(0.50, 0.20), (0.50, 0.80)],
          [(0.35, 0.20), (0.30, 0.55), (0.70, 0.55)]]
TIMING = re.compile(r"updated in (\d+) ms after the stroke \(preprocessing and model: (\d+) ms\)")


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_lab(folder: Path, port: int, token: str) -> subprocess.Popen:
    """JupyterLab serving `folder` on localhost, in this Python environment; returns once it answers."""
    lab = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}",
                            "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}",
                            f"--ServerApp.root_dir={folder}", *(["--allow-root"] if os.geteuid() == 0 else [])],
                           cwd=folder,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(120):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2):
                return lab
        except OSError:
            if lab.poll() is not None:
                raise SystemExit(f"JupyterLab exited with code {lab.returncode} before it answered") from None
            time.sleep(0.5)
    lab.terminate()
    raise SystemExit("JupyterLab did not answer within 60 s")


def draw(page, box: dict, shape: list[tuple[float, float]]) -> None:
    """One stroke with the mouse through the shape's points."""
    points = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in shape]
    page.mouse.move(*points[0])
    page.mouse.down()
    for point in points[1:]:
        page.mouse.move(*point, steps=12)
    page.mouse.up()


def measure(chromium: str, strokes: int, port: int, token: str) -> tuple[list[float], list[float], int, str]:
    """Draw `strokes` digits on the pad: the round trips and Python's share in ms, the strokes with no timing line
    within 10 s, and the browser's version."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"http://127.0.0.1:{port}/lab/tree/pad.ipynb?token={token}")
        print("JupyterLab is open; running the pad's cell (it trains Chapter 8's CNN if it is not cached)",
              file=sys.stderr, flush=True)
        page.wait_for_selector(".jp-Notebook .jp-Cell .cm-content", timeout=120_000)
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
        page.click(".jp-Notebook .jp-Cell .cm-content")
        page.keyboard.press("Shift+Enter")
        canvas = page.wait_for_selector(".course-drawpad canvas.pad", timeout=900_000)  # trains the CNN if needed
        box = canvas.bounding_box()
        trips, python, missed = [], [], 0
        for i in range(strokes):
            page.click(".course-drawpad button:has-text('Clear')")
            page.evaluate("() => document.querySelectorAll('.course-drawpad .small')"
                          ".forEach(e => { if (e.textContent.startsWith('updated')) e.textContent = ''; })")
            draw(page, box, SHAPES[i % len(SHAPES)])
            try:
                shown = page.wait_for_function(
                    "() => [...document.querySelectorAll('.course-drawpad .small')]"
                    ".map(e => e.textContent).find(t => t.startsWith('updated in')) || false", timeout=10_000)
            except PlaywrightTimeout:
                missed += 1  # no timing line within 10 s: counted, and the next stroke goes on
                page.screenshot(path=str(Path(tempfile.gettempdir()) / f"pad-latency-missed-{i + 1}.png"))
                continue
            found = TIMING.search(shown.json_value())
            trips.append(float(found.group(1)))
            python.append(float(found.group(2)))
            print(f"\rstroke {i + 1}/{strokes}: {trips[-1]:.0f} ms", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        version = browser.version
        browser.close()
    return trips, python, missed, version


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strokes", type=int, default=30, help="strokes to draw and time (default 30)")
    parser.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser"),
                        help="the Chromium executable (default: chromium on the PATH)")
    args = parser.parse_args()
    if not args.chromium or not Path(args.chromium).exists():
        raise SystemExit("no Chromium found: install Debian's (apt-get install chromium) or pass --chromium PATH")
    try:
        import playwright  # noqa: F401
    except ImportError:
        raise SystemExit("Playwright is missing: pip install playwright (the Python package; it downloads no "
                         "browser unless asked)") from None
    from helpers import describe_cpu

    with tempfile.TemporaryDirectory(prefix="pad-latency-") as folder:
        notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(PAD_CELL)])
        notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(notebook, Path(folder) / "pad.ipynb")
        port, token = free_port(), secrets.token_hex(16)
        lab = start_lab(Path(folder), port, token)
        try:
            trips, python, missed, version = measure(args.chromium, args.strokes, port, token)
        finally:
            lab.terminate()
            lab.wait(timeout=30)
    p90 = statistics.quantiles(trips, n=10, method="inclusive")[-1] if len(trips) > 1 else trips[0]
    print(describe_cpu())
    print(f"browser: headless Chromium {version}, JupyterLab, {len(trips)} strokes timed, {missed} with no "
          "timing line within 10 s")
    print(f"{'':<38} {'median':>8} {'90th pct':>9} {'max':>7}")
    print(f"{'stroke end -> probabilities on screen':<38} {statistics.median(trips):6.0f} ms {p90:7.0f} ms "
          f"{max(trips):5.0f} ms")
    print(f"{'  of it, preprocessing and the model':<38} {statistics.median(python):6.0f} ms")


if __name__ == "__main__":
    main()
