"""A drawing pad for JupyterLab (Chapters 8 and 9): draw a digit, see what the model sees and reads, live.

    pad = DrawPad(model)                      # draw with the mouse, a pen or a finger; Clear; Save as digit d
    pad                                       # (the last line of a cell) shows it
    pad.set_pixels(image)                     # or draw from Python: any 2-D grayscale array (uint8, or float 0-1)
    pad.digit, pad.probabilities, pad.seen    # the digit read, the ten probabilities, the 28×28 image the model saw
    pad.save(7)                               # data/custom/7/pad_<time>.png: a new file, never over an existing one
    pad.model = fine_tuned                    # another model reads the same drawing (Chapter 9: before and after)
    measure_latency(model)                    # the pad's Python-side latency: median and 90th percentile, ms

The pad reads the drawing exactly as `load_digit` reads a PNG file holding the same pixels (Chapter 9's
preprocessing, helpers.saved.ch09), so the pad, `predict_files` and `load_folder` agree on every drawing.
It is an anywidget: JupyterLab needs no build step for it; without a browser (nbval, a script) it is an ordinary
object whose drawing is set from Python.
"""

from __future__ import annotations

import io
import os
import tempfile
import time
from itertools import count
from pathlib import Path
from typing import Any

import anywidget
import numpy as np
import traitlets as t
from PIL import Image

from .custom import bilingual, custom_dir, model_probabilities
from .images import ImageProblem, resize, to_gray
from .saved.ch09 import preprocess

PAD_SIZE = 112  # the drawing as Python receives and saves it: 112×112 grayscale, 4× MNIST's 28
CANVAS_PX = 280  # the canvas on screen, in CSS pixels
PEN = 5.0  # pen width in pad pixels (12.5 CSS px): MNIST-like strokes for digits drawn 30 to 80 pad pixels tall
SHOWN_MAX = 512  # larger drawings set from Python are sent to the browser shrunk to this (the pad keeps them whole)
EMPTY = "no ink yet: draw a digit on the pad · 还没有笔迹：请在画板上写一个数字"

# The browser side: an ES module with anywidget's render({model, el}). It draws each stroke twice, on the visible
# canvas and on a hidden PAD_SIZE×PAD_SIZE "paper" canvas, and sends the paper's gray values (one byte a pixel) to
# Python when a stroke ends and every 100 ms while drawing, one drawing at a time. Python answers by setting
# `_result` (see DrawPad._publish), which the view shows: the 28×28 image, ten bars, the digit, the latency.
ESM = r"""
const CSS_SIZE = 280, THROTTLE_MS = 100, GIVE_UP_MS = 3000;

function bytesOf(value) {  // binary traits arrive as DataView (ipywidgets 8), ArrayBuffer or a typed array
  if (!value) return null;
  if (value instanceof DataView) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  return Array.isArray(value) ? Uint8Array.from(value) : null;
}

function grayCanvas(bytes, width, height) {  // a canvas holding gray values, one byte a pixel
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d");
  const image = context.createImageData(width, height);
  for (let i = 0; i < width * height; i++) {
    image.data[4 * i] = image.data[4 * i + 1] = image.data[4 * i + 2] = bytes[i];
    image.data[4 * i + 3] = 255;
  }
  context.putImageData(image, 0, 0);
  return canvas;
}

function element(tag, className, parent, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  if (parent) parent.appendChild(node);
  return node;
}

function render({ model, el }) {
  const view = Math.random().toString(36).slice(2);  // this view's id: its own drawings come back unpainted
  const size = model.get("size"), pen = model.get("pen");
  const root = element("div", "course-drawpad", el);

  // the pad: a visible canvas (sharp on any screen) and the paper canvas Python receives
  const left = element("div", "column", root);
  const canvas = element("canvas", "pad", left);
  const dpr = window.devicePixelRatio || 1;
  canvas.width = canvas.height = Math.round(CSS_SIZE * dpr);
  canvas.style.width = canvas.style.height = CSS_SIZE + "px";
  const screen = canvas.getContext("2d");
  const paper = document.createElement("canvas");
  paper.width = paper.height = size;
  const ink = paper.getContext("2d", { willReadFrequently: true });
  for (const [context, scale] of [[screen, dpr], [ink, size / CSS_SIZE]]) {
    context.setTransform(scale, 0, 0, scale, 0, 0);  // both draw in CSS pixels of the 280-px pad
    context.lineCap = context.lineJoin = "round";
    context.strokeStyle = context.fillStyle = "#000";
    context.lineWidth = pen * CSS_SIZE / size;  // `pen` pad pixels on the paper
  }
  const buttons = element("div", "buttons", left);
  const clearButton = element("button", "", buttons, "Clear");
  const chooser = element("select", "", buttons);
  for (let d = 0; d < 10; d++) element("option", "", chooser, String(d)).value = String(d);
  const saveButton = element("button", "", buttons);
  const status = element("div", "small status", left);

  // what the model sees and reads
  const right = element("div", "column", root);
  element("div", "small", right, "what the model sees (28×28)");
  const seen = element("canvas", "seen", right);
  seen.width = seen.height = 28;
  const headline = element("div", "headline", right);
  const bars = [];
  for (let d = 0; d < 10; d++) {
    const row = element("div", "row", right);
    element("span", "label", row, String(d));
    const fill = element("div", "fill", element("div", "track", row));
    bars.push({ row, fill, value: element("span", "value", row) });
  }
  const timing = element("div", "small", right);

  function blank() {
    for (const context of [screen, ink]) {
      context.save();
      context.setTransform(1, 0, 0, 1, 0, 0);
      context.fillStyle = "#fff";
      context.fillRect(0, 0, context.canvas.width, context.canvas.height);
      context.restore();
    }
  }
  function dot(p) {
    for (const context of [screen, ink]) {
      context.beginPath();
      context.arc(p.x, p.y, context.lineWidth / 2, 0, 2 * Math.PI);
      context.fill();
    }
  }
  function segment(a, b) {
    for (const context of [screen, ink]) {
      context.beginPath();
      context.moveTo(a.x, a.y);
      context.lineTo(b.x, b.y);
      context.stroke();
    }
  }
  function paint(result) {  // a drawing set from Python, or drawn in another view of this pad
    blank();
    const bytes = bytesOf(result.drawing);
    if (!bytes || bytes.length !== result.width * result.height) return;
    const scale = Math.min(size / result.width, size / result.height);  // fit and centre it on the square paper
    const w = result.width * scale, h = result.height * scale;
    ink.save();
    ink.setTransform(1, 0, 0, 1, 0, 0);
    ink.drawImage(grayCanvas(bytes, result.width, result.height), (size - w) / 2, (size - h) / 2, w, h);
    ink.restore();
    screen.save();
    screen.setTransform(1, 0, 0, 1, 0, 0);
    screen.drawImage(paper, 0, 0, canvas.width, canvas.height);
    screen.restore();
  }

  // sending the drawing: one at a time, at most every THROTTLE_MS while drawing, always once a stroke ends
  let seq = 0, waiting = null, waitingSince = 0, dirty = false, timer = null, lastSent = -Infinity;
  let stroke = null, strokeEnd = null, timedSeq = null, timedStart = 0, chosen = null;
  function send(content, buffers) {
    seq += 1;
    waiting = seq;
    waitingSince = lastSent = performance.now();
    model.send({ ...content, view, seq }, undefined, buffers);
  }
  function sendDrawing() {
    dirty = false;
    if (strokeEnd !== null) [timedSeq, timedStart, strokeEnd] = [seq + 1, strokeEnd, null];
    const rgba = ink.getImageData(0, 0, size, size).data;
    const gray = new Uint8Array(size * size);
    for (let i = 0; i < gray.length; i++) gray[i] = rgba[4 * i];
    send({ type: "pixels", height: size, width: size }, [gray.buffer]);
  }
  function flush(now = false) {
    if (!dirty) return;
    const busy = waiting !== null && performance.now() - waitingSince < GIVE_UP_MS;
    const early = stroke !== null && performance.now() - lastSent < THROTTLE_MS;
    if (!now && (busy || early)) {  // the answer to the last drawing, or the timer, sends this one
      if (early && timer === null) timer = setTimeout(() => { timer = null; flush(); }, THROTTLE_MS);
      return;
    }
    sendDrawing();
  }
  function point(event) {
    const box = canvas.getBoundingClientRect();
    return { x: (event.clientX - box.left) * CSS_SIZE / box.width,
             y: (event.clientY - box.top) * CSS_SIZE / box.height };
  }
  canvas.addEventListener("pointerdown", (event) => {
    if (event.button > 0) return;  // mouse, pen tip or finger only: no right button, no eraser end
    event.preventDefault();
    canvas.setPointerCapture(event.pointerId);
    stroke = point(event);
    dot(stroke);
    dirty = true;
    flush();
  });
  canvas.addEventListener("pointermove", (event) => {
    if (stroke === null) return;
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
    for (const e of events.length ? events : [event]) {  // every sample a fast pen delivered, not only the last
      const p = point(e);
      segment(stroke, p);
      stroke = p;
    }
    dirty = true;
    flush();
  });
  const endStroke = () => {
    if (stroke === null) return;
    stroke = null;
    if (dirty) {  // strokes not sent yet: time from now until their answer is shown
      strokeEnd = performance.now();
      flush();
    } else if (waiting !== null) {  // the drawing in flight already holds the whole stroke: time its answer
      [timedSeq, timedStart] = [waiting, performance.now()];
    }  // else the answer to the whole stroke is on screen already: nothing to time
  };
  for (const name of ["pointerup", "pointercancel", "lostpointercapture"]) canvas.addEventListener(name, endStroke);

  clearButton.addEventListener("click", () => {
    blank();
    dirty = false;
    chosen = null;
    send({ type: "clear" });
  });
  chooser.addEventListener("change", () => {
    chosen = chooser.value;
    saveButton.textContent = "Save as digit " + chooser.value;
  });
  saveButton.addEventListener("click", () => {
    flush(true);  // Python saves what the pad shows now: send the last strokes first (messages keep their order)
    send({ type: "save", digit: Number(chooser.value) });
    chosen = null;
  });

  // showing Python's answer
  function show(result) {
    const seenBytes = bytesOf(result.seen);
    const context = seen.getContext("2d");
    if (seenBytes && seenBytes.length === 784) context.drawImage(grayCanvas(seenBytes, 28, 28), 0, 0);
    else context.clearRect(0, 0, 28, 28);
    const p = result.probabilities || [];
    bars.forEach((bar, d) => {
      const value = p.length === 10 ? p[d] : 0;
      bar.fill.style.width = (100 * value).toFixed(1) + "%";
      bar.value.textContent = p.length === 10 ? (100 * value).toFixed(1) + "%" : "";
      bar.row.classList.toggle("top", d === result.digit);
    });
    const readable = result.digit !== null && result.digit !== undefined;
    headline.textContent = readable ? `reads ${result.digit} (${(100 * p[result.digit]).toFixed(1)}%)`
                                    : result.message || "";
    headline.classList.toggle("problem", !readable);
    if (readable && chosen === null) chooser.value = String(result.digit);
    saveButton.disabled = !readable;
    saveButton.textContent = "Save as digit " + chooser.value;
  }
  function onResult() {
    const result = model.get("_result") || {};
    const mine = result.origin === view;
    if (mine && result.seq === waiting) waiting = null;
    if (!mine) paint(result);
    show(result);
    if (mine && result.seq === timedSeq) {
      const ms = performance.now() - timedStart;
      timedSeq = null;
      timing.textContent = `updated in ${ms.toFixed(0)} ms after the stroke ` +
        `(preprocessing and model: ${Number(result.python_ms).toFixed(0)} ms)`;
      model.send({ type: "latency", ms, view, seq });
    }
    flush();
  }
  const onStatus = () => { status.textContent = model.get("status"); };
  model.on("change:_result", onResult);
  model.on("change:status", onStatus);
  blank();
  paint(model.get("_result") || {});
  show(model.get("_result") || {});
  onStatus();
  return () => { if (timer !== null) clearTimeout(timer); };
}

export default { render };
"""

CSS = """
.course-drawpad { display: flex; flex-wrap: wrap; gap: 18px; align-items: flex-start; padding: 4px;
  font-family: var(--jp-ui-font-family, sans-serif); font-size: 13px; color: var(--jp-ui-font-color1, #222); }
.course-drawpad .column { display: flex; flex-direction: column; gap: 6px; }
.course-drawpad canvas.pad { border: 1px solid var(--jp-border-color1, #999); border-radius: 4px; background: #fff;
  touch-action: none; cursor: crosshair; }
.course-drawpad canvas.seen { width: 112px; height: 112px; image-rendering: pixelated; background: #000;
  border: 1px solid var(--jp-border-color1, #999); }
.course-drawpad .buttons { display: flex; gap: 6px; align-items: center; }
.course-drawpad button, .course-drawpad select { font: inherit; padding: 2px 8px; }
.course-drawpad .headline { font-size: 16px; font-weight: 600; min-height: 22px; max-width: 260px; }
.course-drawpad .headline.problem { font-size: 13px; font-weight: 400; color: var(--jp-warn-color0, #b35c00); }
.course-drawpad .row { display: flex; align-items: center; gap: 6px; height: 17px; }
.course-drawpad .label { width: 10px; text-align: right; font-variant-numeric: tabular-nums; }
.course-drawpad .track { width: 150px; height: 10px; background: var(--jp-layout-color3, #e4e4e4); border-radius: 2px;
  overflow: hidden; }
.course-drawpad .fill { height: 100%; width: 0; background: var(--jp-brand-color2, #90b8e0); }
.course-drawpad .row.top .label, .course-drawpad .row.top .value { font-weight: 700; }
.course-drawpad .row.top .fill { background: var(--jp-brand-color0, #1565c0); }
.course-drawpad .value { width: 48px; font-variant-numeric: tabular-nums; }
.course-drawpad .small { font-size: 11px; color: var(--jp-ui-font-color2, #666); max-width: 280px;
  overflow-wrap: anywhere; }
"""


# ---------------------------------------------------------------- the drawing as the model sees it


def as_pixels(image: Any) -> np.ndarray:
    """Any 2-D grayscale array as the pad's uint8 pixels (0 = black); floats must lie in [0, 1], integers in 0..255."""
    array = np.asarray(image)
    if array.ndim != 2 or 0 in array.shape:
        raise ValueError(f"set_pixels needs a 2-D grayscale array (height, width); got shape {array.shape}. "
                         "For a colour image, convert it first, e.g. helpers.images.to_gray(picture)")
    if array.dtype == np.uint8:
        return array.copy()
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
            raise ValueError(f"float pixels must lie in [0, 1] (0 = black, 1 = white); these run from {array.min()} "
                             f"to {array.max()}. Divide 0-255 values by 255 first")
        return np.round(array * 255).astype(np.uint8)
    if np.issubdtype(array.dtype, np.integer) and array.min() >= 0 and array.max() <= 255:
        return array.astype(np.uint8)
    raise ValueError(f"pixels of type {array.dtype} (from {array.min()} to {array.max()}) are neither uint8 nor "
                     "integers 0-255 nor floats in [0, 1]")


def what_the_model_sees(pixels: np.ndarray) -> np.ndarray:
    """The 28×28 uint8 image the model sees for uint8 pixels: exactly what load_digit makes of a PNG of them."""
    return preprocess(to_gray(Image.fromarray(pixels)))  # read_image's conversion, then Chapter 9's preprocessing


def drawing_from_digit(digit: np.ndarray, size: int = PAD_SIZE) -> np.ndarray:
    """An MNIST digit (uint8 28×28, white on black) as a drawing on the pad: size×size, dark ink on white, uint8."""
    enlarged = resize(np.asarray(digit, dtype=np.float32) / 255, size, size)  # bicubic: smooth, anti-aliased strokes
    return np.round((1 - enlarged) * 255).astype(np.uint8)


def png_bytes(pixels: np.ndarray) -> bytes:
    """uint8 grayscale pixels as a PNG file's bytes (8-bit gray: load_folder reads back the same values)."""
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


def write_new_file(folder: Path, stem: str, data: bytes, suffix: str = ".png") -> Path:
    """Write data to folder/<stem><suffix>, or <stem>_2<suffix>, ...: the first free name; never over a file.

    Atomic: the bytes go to a hidden temporary file, which is then linked under the new name (a link fails rather
    than replace a file that appeared meanwhile), so a reader never sees half a file.
    """
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".pad-", suffix=".part", dir=folder)  # hidden: load_folder skips dot files
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes files private; these are ordinary data
        for n in count(1):
            path = folder / f"{stem}{'' if n == 1 else f'_{n}'}{suffix}"
            try:
                os.link(tmp, path)
                return path
            except FileExistsError:
                continue
            except OSError:  # a file system without hard links: exclusive creation still never overwrites
                try:
                    with open(path, "xb") as out:
                        out.write(data)
                    return path
                except FileExistsError:
                    continue
    finally:
        Path(tmp).unlink(missing_ok=True)
    raise AssertionError("unreachable")  # count() never ends


# ---------------------------------------------------------------- the widget


class DrawPad(anywidget.AnyWidget):
    """Draw a digit; see the 28×28 image the model sees and its ten probabilities, live; save it as a labelled PNG.

    pad = DrawPad(model, save_dir=None): a PyTorch module, a Keras model or a function of uint8 (N, 28, 28) images;
    saves go to save_dir/<digit>/ (default data/custom, Chapter 9's folder of your own digits).
    """

    _esm = ESM
    _css = CSS
    size = t.Int(PAD_SIZE).tag(sync=True)  # the paper: size×size pixels sent by the browser
    pen = t.Float(PEN).tag(sync=True)  # pen width in paper pixels
    status = t.Unicode("").tag(sync=True)  # the line under the buttons: the saved file, or what went wrong
    _result = t.Dict().tag(sync=True)  # what the views show; see _publish

    def __init__(self, model: Any, save_dir: str | Path | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._model = model
        self.save_dir = Path(save_dir) if save_dir is not None else None
        self._pixels: np.ndarray | None = None  # uint8 (H, W), dark ink on white as drawn; None: blank
        self._seen: np.ndarray | None = None  # uint8 (28, 28), white ink on black
        self._probabilities: np.ndarray | None = None  # float (10,)
        self._problem: str | None = EMPTY
        self.last_latency_ms: float | None = None  # drawing received -> probabilities sent to the views
        self.last_round_trip_ms: float | None = None  # the browser's figure: end of a stroke -> display updated
        self.on_msg(self._on_message)
        self._update(None, "python", 0)

    def __repr__(self) -> str:
        """What the pad reads, in words (the text a headless notebook stores for the widget)."""
        name = type(getattr(self, "_model", None)).__name__  # getattr: repr works while __init__ runs, too
        if getattr(self, "_probabilities", None) is None:
            return f"DrawPad({name}): {getattr(self, '_problem', None)}"
        return f"DrawPad({name}): reads {self.digit} ({self._probabilities.max():.1%})"

    # ------------------------------------------------ what the pad holds and reads

    @property
    def model(self) -> Any:
        """The model that reads the drawing; assign another one to read the same drawing again."""
        return self._model

    @model.setter
    def model(self, model: Any) -> None:
        old, self._model = self._model, model
        try:
            self._update(self._pixels, "python", 0)
        except Exception:  # a model that cannot read the drawing is not kept
            self._model = old
            raise

    @property
    def pixels(self) -> np.ndarray | None:
        """The drawing: uint8 (H, W), 0 = black (a copy), or None when the pad is blank."""
        return None if self._pixels is None else self._pixels.copy()

    @property
    def seen(self) -> np.ndarray | None:
        """The 28×28 uint8 image the model saw (white ink on black, MNIST's convention), or None."""
        return None if self._seen is None else self._seen.copy()

    @property
    def probabilities(self) -> np.ndarray | None:
        """The model's ten probabilities for the drawing, or None when there is no readable drawing."""
        return None if self._probabilities is None else self._probabilities.copy()

    @property
    def digit(self) -> int | None:
        """The digit the model reads, or None (blank pad, no ink found)."""
        return None if self._probabilities is None else int(self._probabilities.argmax())

    @property
    def problem(self) -> str | None:
        """Why there is no digit (e.g. 'no ink found: ...', in English and Chinese), or None."""
        return self._problem

    def set_pixels(self, image: Any) -> None:
        """Draw from Python: any 2-D grayscale array (uint8, integers 0-255 or floats in [0, 1]); the views show it."""
        self._update(as_pixels(image), "python", 0)

    def clear(self) -> None:
        """Blank the pad."""
        self._update(None, "python", 0)
        self.status = ""

    def save(self, digit: int) -> Path:
        """Save the drawing as save_dir/<digit>/pad_<time>.png (a new file; the folder is made if missing): its path."""
        if isinstance(digit, bool) or not isinstance(digit, int | np.integer) or not 0 <= digit <= 9:
            raise ValueError(f"digit must be one of 0-9 (the folder the drawing goes into); got {digit!r}")
        if self._pixels is None or self.digit is None:
            raise ValueError(f"nothing to save: {self._problem}")
        folder = (self.save_dir or custom_dir()) / str(int(digit))
        stem = time.strftime("pad_%Y%m%d-%H%M%S")
        try:
            path = write_new_file(folder, stem, png_bytes(self._pixels))
        except OSError as err:
            raise OSError(f"could not save into {folder}: {err.strerror or err}; choose another save_dir") from err
        self.status = f"saved as {int(digit)}: {path}"
        return path

    # ------------------------------------------------ reading the drawing, and the views

    def _update(self, pixels: np.ndarray | None, origin: str, seq: int) -> None:
        """Take a drawing (None: blank), read it with the model and send the result to the views; time it."""
        start = time.perf_counter()
        seen, probabilities, problem = None, None, EMPTY
        if pixels is not None:
            try:
                seen = what_the_model_sees(pixels)
                probabilities = np.asarray(model_probabilities(self._model, seen[None]))[0]
                problem = None
            except ImageProblem as err:  # no ink found: the views say so instead of showing probabilities
                problem = bilingual(str(err))
        if probabilities is not None and probabilities.shape != (10,):
            raise ValueError(f"the model gives {probabilities.size} outputs for an image; the pad needs a model of "
                             "the ten digits (10 outputs)")
        # set together, after the model answered: a model that fails leaves the pad as it was
        self._pixels, self._seen, self._probabilities, self._problem = pixels, seen, probabilities, problem
        self._publish(origin, seq, 1000 * (time.perf_counter() - start))
        self.last_latency_ms = 1000 * (time.perf_counter() - start)

    def _publish(self, origin: str, seq: int, python_ms: float) -> None:
        """Set `_result`, all the views need in one update: the drawing, the 28×28 image, probabilities, digit."""
        shown = self._pixels
        if shown is not None and max(shown.shape) > SHOWN_MAX:  # a big photo: the views get a small copy
            scale = SHOWN_MAX / max(shown.shape)
            small = resize(shown / 255, max(1, round(shown.shape[0] * scale)), max(1, round(shown.shape[1] * scale)))
            shown = np.round(small * 255).astype(np.uint8)
        self._result = {
            "origin": origin, "seq": seq,  # who sent the drawing ("python" or a view's id) and its number
            "height": 0 if shown is None else shown.shape[0], "width": 0 if shown is None else shown.shape[1],
            "drawing": None if shown is None else shown.tobytes(),  # row-major gray bytes
            "seen": None if self._seen is None else self._seen.tobytes(),  # 784 bytes
            "probabilities": None if self._probabilities is None else [float(p) for p in self._probabilities],
            "digit": self.digit, "message": self._problem or "", "python_ms": python_ms,
        }

    def _on_message(self, _widget: Any, content: dict, buffers: list) -> None:
        """The browser's messages: a drawing, Clear, Save, and the round trip it measured."""
        kind, origin, seq = content.get("type"), str(content.get("view", "")), int(content.get("seq", 0))
        try:
            if kind == "pixels":
                height, width = int(content["height"]), int(content["width"])
                data = np.frombuffer(buffers[0], dtype=np.uint8)
                if data.size != height * width:
                    raise ValueError(f"the browser sent {data.size} bytes for a {height}×{width} drawing")
                self._update(data.reshape(height, width).copy(), origin, seq)
            elif kind == "clear":
                self._update(None, origin, seq)
                self.status = ""
            elif kind == "save":
                self.save(int(content["digit"]))
                self._publish(origin, seq, 0.0)  # answers the view, which waits for an answer to every message
            elif kind == "latency":
                self.last_round_trip_ms = float(content["ms"])
        except Exception as err:  # a message handler has no caller to raise to: the status line shows the problem
            self.status = f"{type(err).__name__}: {err}"
            self._publish(origin, seq, 0.0)


def measure_latency(model: Any, drawings: np.ndarray | None = None, repeats: int = 50) -> dict[str, float]:
    """The pad's Python-side latency, drawing received -> probabilities sent: median and 90th percentile in ms.

    drawings: (N, H, W) pad drawings; default the first 50 MNIST test digits as drawings (drawing_from_digit).
    """
    if drawings is None:
        from .data import load_mnist

        _, (x_test, _) = load_mnist(progress=False)
        drawings = np.stack([drawing_from_digit(x) for x in x_test[:50]])
    pad = DrawPad(model)
    times = []
    for i in range(repeats):
        pad.set_pixels(drawings[i % len(drawings)])
        times.append(pad.last_latency_ms)
    median, p90 = np.percentile(times, [50, 90])
    return {"median_ms": float(median), "p90_ms": float(p90), "repeats": repeats}
