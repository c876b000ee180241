"""Fixtures shared by several test files."""

from __future__ import annotations

import pytest

from helpers import recipes


@pytest.fixture(scope="session")
def cnn():
    """Chapter 8's cached CNN; the tests never train it (skipped where it is not cached yet)."""
    if recipes.pretrained_record() is None:
        pytest.skip("Chapter 8's CNN is not cached here (run Chapter 8 or `python -m helpers.predict` once)")
    return recipes.pretrained_cnn(progress=False)[0]
