"""Differential tests: the only tests that open sockets, and only on 127.0.0.1."""

from __future__ import annotations

import pytest
from runner import RESULTS_FILE


def pytest_sessionstart(session: pytest.Session) -> None:
    """Start every session with a fresh results file, so the report reflects this run only."""
    RESULTS_FILE.unlink(missing_ok=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "differential" in item.path.parts:
            item.add_marker(pytest.mark.differential)
            item.add_marker(pytest.mark.network)
