"""Fixtures of the checker tests."""

from __future__ import annotations

import pytest
from checks_helpers import fresh_run

from faultline.checks.synthetic import SyntheticRun


@pytest.fixture
def run() -> SyntheticRun:
    """A fresh deep copy of the small synthetic run: tests plant bugs in it."""
    return fresh_run()
