"""Chapter 10's generated tasks: multi-digit numbers, detection canvases, box maths, grid targets, AP, text."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import tasks


def fake_digits(n=50, seed=0):
    """Blocky 'digits': a filled rectangle whose width depends on the label, inside a 28x28 frame."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    x = np.zeros((n, 28, 28), np.uint8)
    for i, label in enumerate(y):
        x[i, 4:24, 10 - label // 2:14 + label // 2] = 200
    return x, y


def test_ink_columns_and_box():
    image = np.zeros((28, 28), np.uint8)
    image[5:9, 3:11] = 255
    assert tasks.ink_columns(image).shape == (28, 8)
    assert tasks.ink_box(image) == (3, 5, 11, 9)


def test_make_numbers_labels_and_pixels():
    x, y = fake_digits()
    images, labels = tasks.make_numbers(x, y, 40, max_digits=4, width=112, seed=1)
    assert images.shape == (40, 28, 112) and images.dtype == np.uint8 and labels.shape == (40, 4)
    lengths = (labels != tasks.BLANK).sum(1)
    assert lengths.min() >= 1 and lengths.max() <= 4
    for row in labels:  # digits first, then blanks: never a digit after a blank
        k = (row != tasks.BLANK).sum()
        assert (row[:k] != tasks.BLANK).all() and (row[k:] == tasks.BLANK).all()
    # every image holds exactly as much ink as its digits (they are placed without overlap here)
    ink = (images > 0).sum(axis=(1, 2))
    expected = [sum(20 * (4 + 2 * (d // 2)) for d in row if d != tasks.BLANK) for row in labels]  # 20 rows x width
    assert np.array_equal(ink, expected)
    again, _ = tasks.make_numbers(x, y, 40, max_digits=4, width=112, seed=1)
    assert np.array_equal(images, again)
    assert tasks.number_strings(np.array([[4, 2, 10, 10], [7, 10, 10, 10]])) == ["42", "7"]


def test_make_numbers_squeezes_when_too_wide():
    x = np.full((5, 28, 28), 255, np.uint8)  # every digit is a full 28-pixel-wide block
    images, labels = tasks.make_numbers(x, np.arange(5), 20, max_digits=4, width=100, seed=0)
    assert images.shape == (20, 28, 100)  # 4 x 28 = 112 > 100: gaps became overlaps, nothing crashed


def test_box_iou_known_values():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 5, 5]])
    assert np.allclose(tasks.box_iou(a, b), [[1.0, 50 / 150, 0.0, 25 / 100]])
    assert tasks.box_iou(a, np.zeros((0, 4))).shape == (1, 0)


def test_nms_keeps_best_of_overlapping():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], np.float32)
    keep = tasks.nms(boxes, np.array([0.6, 0.9, 0.5]), iou_threshold=0.5)
    assert keep.tolist() == [1, 2]


def test_detection_set_boxes_hold_the_ink():
    x, y = fake_digits()
    images, boxes, labels = tasks.make_detection_set(x, y, 30, canvas=64, max_objects=3, seed=2)
    assert images.shape == (30, 64, 64)
    for image, b, lab in zip(images, boxes, labels, strict=True):
        assert 1 <= len(b) <= 3 and len(b) == len(lab)
        assert (b[:, :2] >= 0).all() and (b[:, 2:] <= 64).all() and (b[:, 2:] > b[:, :2]).all()
        if len(b) > 1:
            iou = tasks.box_iou(b, b)
            assert iou[~np.eye(len(b), dtype=bool)].max() <= 0.05
        mask = np.zeros_like(image, bool)
        for x0, y0, x1, y1 in b.astype(int):
            mask[y0:y1, x0:x1] = True
            assert image[y0:y1, x0:x1].max() > 0
        assert image[~mask].max(initial=0) == 0  # no ink outside the boxes


def test_encode_decode_round_trip():
    boxes = [np.array([[4, 6, 20, 30], [40, 30, 60, 58]], np.float32), np.array([[10, 10, 30, 40]], np.float32)]
    labels = [np.array([3, 7]), np.array([1])]
    obj, box, cls = tasks.encode_grid(boxes, labels, canvas=64, grid=8)
    assert obj.shape == (2, 8, 8) and obj.sum() == 3 and (cls >= 0).sum() == 3
    for i in range(2):
        probs = np.zeros((8, 8, 10))
        probs[cls[i] >= 0, cls[i][cls[i] >= 0]] = 1.0
        got_boxes, scores, got_labels = tasks.decode_grid(obj[i], box[i], probs, canvas=64, threshold=0.5)
        order = np.argsort(got_boxes[:, 0])
        assert np.allclose(got_boxes[order], boxes[i][np.argsort(boxes[i][:, 0])], atol=1e-4)
        assert sorted(got_labels.tolist()) == sorted(labels[i].tolist()) and np.allclose(scores, 1)


def test_average_precision():
    truth_boxes = [np.array([[0, 0, 10, 10]], np.float32), np.array([[20, 20, 30, 30]], np.float32)]
    truth_labels = [np.array([1]), np.array([1])]
    perfect = [(b, np.array([0.9]), lab) for b, lab in zip(truth_boxes, truth_labels, strict=True)]
    ap = tasks.average_precision(perfect, truth_boxes, truth_labels, n_classes=3)
    assert ap[1] == pytest.approx(1.0) and np.isnan(ap[0]) and np.isnan(ap[2])
    # a confident false positive ranked first, then the two hits: precision 0, 1/2, 2/3 at recall 0, 0.5, 1
    fp = np.array([[50, 50, 60, 60], [0, 0, 10, 10]], np.float32)
    dets = [(fp, np.array([0.99, 0.9]), np.array([1, 1])), perfect[1]]
    ap = tasks.average_precision(dets, truth_boxes, truth_labels, n_classes=3)
    assert ap[1] == pytest.approx(0.5 * 2 / 3 + 0.5 * 2 / 3)
    # a detection with the wrong class is no hit
    wrong = [(truth_boxes[0], np.array([0.9]), np.array([2])), perfect[1]]
    assert tasks.average_precision(wrong, truth_boxes, truth_labels, n_classes=3)[1] == pytest.approx(0.5)


def test_char_vocab():
    vocab = tasks.CharVocab("0123456789+=0")
    assert len(vocab) == 12  # the repeated 0 counts once
    assert vocab.encode("47+35=082") == [4, 7, 10, 3, 5, 11, 0, 8, 2]
    assert vocab.decode(vocab.encode("47+35=082")) == "47+35=082"
