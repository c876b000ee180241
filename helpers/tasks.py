"""New tasks generated from MNIST for Chapter 10: multi-digit numbers, a small detection set, arithmetic text,
and the box arithmetic detection needs (IoU, non-maximum suppression, grid targets, average precision).

NumPy only (plus helpers.images.resize); every generator is seeded, so the same call gives the same data.
"""

from __future__ import annotations

import numpy as np

from .images import resize

BLANK = 10  # the label of an empty position in a multi-digit number


# ---------------------------------------------------------------- multi-digit numbers


def ink_columns(image: np.ndarray) -> np.ndarray:
    """The image cropped left and right to the columns that hold ink (all 28 rows kept)."""
    cols = np.flatnonzero(image.max(axis=0) > 0)
    return image[:, cols[0]:cols[-1] + 1] if len(cols) else image


def make_numbers(x: np.ndarray, y: np.ndarray, n: int, max_digits: int = 4, width: int = 112, max_gap: int = 4,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n images (n, 28, width) of 1..max_digits MNIST digits written left to right with random gaps and start.

    Labels (n, max_digits): the digits from the left, then BLANK (10) for the positions that are empty.
    """
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 28, width), np.uint8)
    labels = np.full((n, max_digits), BLANK, np.int64)
    for i in range(n):
        k = int(rng.integers(1, max_digits + 1))
        picks = rng.integers(0, len(x), k)
        crops = [ink_columns(x[j]) for j in picks]
        spare = width - sum(c.shape[1] for c in crops)
        gaps = rng.integers(0, max_gap + 1, k - 1)
        if gaps.sum() > spare:  # too wide: squeeze the gaps (they may become small overlaps)
            gaps = np.full(k - 1, spare // max(k - 1, 1))
        pos = int(rng.integers(0, spare - gaps.sum() + 1))
        for crop, gap in zip(crops, [*gaps, 0], strict=True):
            w = crop.shape[1]
            images[i, :, pos:pos + w] = np.maximum(images[i, :, pos:pos + w], crop)
            pos += w + int(gap)
        labels[i, :k] = y[picks]
    return images, labels


def number_strings(labels: np.ndarray) -> list[str]:
    """The numbers a label array (n, positions) spells, e.g. [4, 2, 10, 10] -> '42'."""
    return ["".join(str(d) for d in row if d != BLANK) for row in np.asarray(labels)]


# ---------------------------------------------------------------- detection data


def ink_box(image: np.ndarray) -> tuple[int, int, int, int]:
    """The tight box (x0, y0, x1, y1) around the ink of an image; x1 and y1 are exclusive."""
    rows, cols = np.flatnonzero(image.max(axis=1) > 0), np.flatnonzero(image.max(axis=0) > 0)
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def make_detection_set(x: np.ndarray, y: np.ndarray, n: int, canvas: int = 64, max_objects: int = 3,
                       scale: tuple[float, float] = (0.7, 1.3), max_iou: float = 0.05, seed: int = 0):
    """n canvases (n, canvas, canvas) uint8 with 1..max_objects digits each, resized at random and placed so that
    no two boxes overlap by more than max_iou. Returns (images, boxes, labels): boxes[i] is a float32 array
    (k, 4) of (x0, y0, x1, y1) pixel boxes around the ink, labels[i] the k digits."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, canvas, canvas), np.uint8)
    all_boxes, all_labels = [], []
    for i in range(n):
        boxes, labels = [], []
        for _ in range(int(rng.integers(1, max_objects + 1))):
            j = int(rng.integers(len(x)))
            x0, y0, x1, y1 = ink_box(x[j])
            s = rng.uniform(*scale)
            h, w = max(2, round((y1 - y0) * s)), max(2, round((x1 - x0) * s))
            crop = np.round(resize(x[j, y0:y1, x0:x1] / 255.0, h, w) * 255).astype(np.uint8)
            for _attempt in range(20):  # find a free place; give the object up if there is none
                top, left = int(rng.integers(0, canvas - h + 1)), int(rng.integers(0, canvas - w + 1))
                box = np.array([left, top, left + w, top + h], np.float32)
                if not boxes or box_iou(box[None], np.array(boxes)).max() <= max_iou:
                    images[i, top:top + h, left:left + w] = np.maximum(images[i, top:top + h, left:left + w], crop)
                    boxes.append(box)
                    labels.append(int(y[j]))
                    break
        all_boxes.append(np.array(boxes, np.float32).reshape(-1, 4))
        all_labels.append(np.array(labels, np.int64))
    return images, all_boxes, all_labels


# ---------------------------------------------------------------- box arithmetic


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box in a (n, 4) with every box in b (m, 4), boxes as (x0, y0, x1, y1)."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float = 0.5) -> np.ndarray:
    """Greedy non-maximum suppression: indices of the boxes kept, best score first."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep = []
    while len(order):
        best, order = order[0], order[1:]
        keep.append(int(best))
        if len(order):
            order = order[box_iou(boxes[best], boxes[order])[0] <= iou_threshold]
    return np.array(keep, np.int64)


def encode_grid(boxes: list[np.ndarray], labels: list[np.ndarray], canvas: int = 64, grid: int = 8):
    """YOLO-style targets: each object belongs to the grid cell that holds its centre.

    Returns (objectness (n, grid, grid) float32, box (n, grid, grid, 4) float32 as (centre x, centre y inside the
    cell in 0..1, width, height as fractions of the canvas), classes (n, grid, grid) int64, -1 where empty).
    When two objects share a cell, the larger one is kept.
    """
    n, cell = len(boxes), canvas / grid
    obj = np.zeros((n, grid, grid), np.float32)
    box = np.zeros((n, grid, grid, 4), np.float32)
    cls = np.full((n, grid, grid), -1, np.int64)
    for i, (b, lab) in enumerate(zip(boxes, labels, strict=True)):
        area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        for k in np.argsort(area, kind="stable"):  # larger objects written last, so they win a shared cell
            cx, cy = (b[k, 0] + b[k, 2]) / 2, (b[k, 1] + b[k, 3]) / 2
            col, row = min(int(cx // cell), grid - 1), min(int(cy // cell), grid - 1)
            obj[i, row, col] = 1
            box[i, row, col] = [cx / cell - col, cy / cell - row, (b[k, 2] - b[k, 0]) / canvas,
                                (b[k, 3] - b[k, 1]) / canvas]
            cls[i, row, col] = lab[k]
    return obj, box, cls


def decode_grid(objectness: np.ndarray, box: np.ndarray, class_probs: np.ndarray, canvas: int = 64,
                threshold: float = 0.5, iou_threshold: float = 0.5):
    """Turn one image's grid outputs into detections: (boxes (k, 4), scores (k,), labels (k,)) after NMS.

    objectness (grid, grid) in 0..1, box (grid, grid, 4) encoded as in encode_grid, class_probs (grid, grid, C).
    The score of a detection is objectness × the probability of its most likely class.
    """
    grid = objectness.shape[0]
    cell = canvas / grid
    rows, cols = np.nonzero(objectness >= threshold)
    cx = (cols + box[rows, cols, 0]) * cell
    cy = (rows + box[rows, cols, 1]) * cell
    w, h = box[rows, cols, 2] * canvas, box[rows, cols, 3] * canvas
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1).astype(np.float32)
    labels = class_probs[rows, cols].argmax(axis=1)
    scores = objectness[rows, cols] * class_probs[rows, cols].max(axis=1)
    keep = nms(boxes, scores, iou_threshold) if len(boxes) else np.zeros(0, np.int64)
    return boxes[keep].reshape(-1, 4), scores[keep], labels[keep]


def average_precision(detections: list[tuple[np.ndarray, np.ndarray, np.ndarray]], boxes: list[np.ndarray],
                      labels: list[np.ndarray], n_classes: int = 10, iou_threshold: float = 0.5) -> np.ndarray:
    """Average precision per class (Pascal VOC, all points): detections[i] = (boxes, scores, labels) of image i.

    A detection is a true positive if it overlaps a not-yet-matched true box of its class with IoU >= threshold
    (detections taken from the highest score down); AP is the area under the interpolated precision-recall curve.
    Classes without true boxes get NaN.
    """
    ap = np.full(n_classes, np.nan)
    for c in range(n_classes):
        n_true = sum(int((lab == c).sum()) for lab in labels)
        found = []  # (score, is true positive)
        for (d_boxes, d_scores, d_labels), t_boxes, t_labels in zip(detections, boxes, labels, strict=True):
            mine, theirs = d_labels == c, t_boxes[t_labels == c]
            used = np.zeros(len(theirs), bool)
            for k in np.argsort(-d_scores[mine], kind="stable"):
                tp = False
                if len(theirs):
                    overlap = box_iou(d_boxes[mine][k], theirs)[0]
                    overlap[used] = -1
                    if overlap.max() >= iou_threshold:
                        used[overlap.argmax()], tp = True, True
                found.append((d_scores[mine][k], tp))
        if n_true == 0:
            continue
        found.sort(key=lambda f: -f[0])
        hits = np.array([tp for _, tp in found], bool)
        recall = np.concatenate([[0.0], np.cumsum(hits) / n_true])
        precision = np.concatenate([[1.0], np.cumsum(hits) / np.arange(1, len(hits) + 1)])
        precision = np.maximum.accumulate(precision[::-1])[::-1]  # the interpolated (monotone) curve
        ap[c] = float(np.sum(np.diff(recall) * precision[1:]))
    return ap


# ---------------------------------------------------------------- text: additions as character strings


class CharVocab:
    """A character-level vocabulary: text <-> integer ids."""

    def __init__(self, chars: str):
        self.chars = "".join(dict.fromkeys(chars))  # unique, in order
        self.index = {c: i for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        """The ids of the characters of text."""
        return [self.index[c] for c in text]

    def decode(self, ids) -> str:
        """The text of a sequence of ids."""
        return "".join(self.chars[int(i)] for i in ids)
