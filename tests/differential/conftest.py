"""Differential tests: the only tests that open sockets, and only on 127.0.0.1."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "differential" in item.path.parts:
            item.add_marker(pytest.mark.differential)
            item.add_marker(pytest.mark.network)
