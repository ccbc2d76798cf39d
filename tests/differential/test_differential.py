"""Every client's drivers, each scenario against the real servers on 127.0.0.1 and against wsfake."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from real import RealServers
from runner import Client, run
from scenarios import SCENARIOS

from clients import clients

CLIENTS = clients()
CASES = [(client, name) for client in CLIENTS for name in SCENARIOS if name in client.drivers]


@pytest.fixture(scope="session")
def real_servers() -> Iterator[RealServers]:
    servers = RealServers()
    try:
        yield servers
    finally:
        servers.close()


def slug(name: str) -> str:
    """A client's name as a test id ``-k`` can select: ``websockets (sync)`` -> ``websockets-sync``."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


@pytest.mark.parametrize(("client", "name"), CASES, ids=[f"{slug(client.name)}-{name}" for client, name in CASES])
def test_scenario(real_servers: RealServers, client: Client, name: str) -> None:
    scenario = SCENARIOS[name]
    outcome = run(real_servers, client, scenario)
    assert outcome.fake == outcome.reference, (
        f"wsfake differs from the real servers' majority in {name!r} ({scenario.description}) for {client.name}\n"
        f"  real ({', '.join(outcome.real)}): {json.dumps(outcome.reference, default=str)}\n"
        f"  fake: {json.dumps(outcome.fake, default=str)}"
    )


def test_every_scenario_has_a_driver() -> None:
    # The websockets asyncio client expresses every scenario but the protocol violations,
    # which only the raw client can commit.
    reference = next(client for client in CLIENTS if client.name == "websockets (asyncio)")
    raw = next(client for client in CLIENTS if client.name == "raw socket")
    assert set(reference.drivers) | set(raw.drivers) == set(SCENARIOS)
    assert len(SCENARIOS) >= 100
