"""Every client's drivers, each scenario against the real servers on 127.0.0.1 and against wsfake."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from clients import clients
from real import RealServers
from runner import Client, run
from scenarios import SCENARIOS

CLIENTS = clients()
CASES = [(client, name) for client in CLIENTS for name in SCENARIOS if name in client.drivers]


@pytest.fixture(scope="session")
def real_servers() -> Iterator[RealServers]:
    servers = RealServers()
    try:
        yield servers
    finally:
        servers.close()


@pytest.mark.parametrize(
    ("client", "name"), CASES, ids=[f"{client.name.replace(' ', '')}-{name}" for client, name in CASES]
)
def test_scenario(real_servers: RealServers, client: Client, name: str) -> None:
    scenario = SCENARIOS[name]
    outcome = run(real_servers, client, scenario)
    assert outcome.fake == outcome.reference, (
        f"wsfake differs from the real servers' majority in {name!r} ({scenario.description}) for {client.name}\n"
        f"  real ({', '.join(outcome.real)}): {json.dumps(outcome.reference, default=str)}\n"
        f"  fake: {json.dumps(outcome.fake, default=str)}"
    )


def test_every_scenario_has_a_driver_for_the_websockets_asyncio_client() -> None:
    reference = next(client for client in CLIENTS if client.name == "websockets (asyncio)")
    assert set(reference.drivers) == set(SCENARIOS)
    assert len(SCENARIOS) >= 60
