"""helpers.metrics equals scikit-learn on known and random arrays."""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

from helpers import metrics


def test_known_small_example():
    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 0, 2])
    cm = metrics.confusion_matrix(y_true, y_pred, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    precision, recall, f1, support = metrics.precision_recall_f1(y_true, y_pred, 3)
    np.testing.assert_allclose(precision, [0.5, 2 / 3, 1.0])
    np.testing.assert_allclose(recall, [0.5, 1.0, 0.5])
    assert support.tolist() == [2, 2, 2] and metrics.accuracy(y_true, y_pred) == 4 / 6
    assert metrics.most_confused(cm, k=5) == [(2, 0, 1), (0, 1, 1)]


def test_equal_to_scikit_learn_on_random_labels():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 10, 500)
    y_pred = np.where(rng.random(500) < 0.7, y_true, rng.integers(0, 9, 500))  # class 9 rarely predicted
    np.testing.assert_array_equal(metrics.confusion_matrix(y_true, y_pred),
                                  skm.confusion_matrix(y_true, y_pred, labels=range(10)))
    ours = metrics.precision_recall_f1(y_true, y_pred)
    theirs = skm.precision_recall_fscore_support(y_true, y_pred, labels=range(10), zero_division=0)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b)
    assert metrics.accuracy(y_true, y_pred) == skm.accuracy_score(y_true, y_pred)
