"""The whole system, started once for the end-to-end tests, driven over HTTP only."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from wagw_local.system import Demo, LocalSystem, Ports, SystemOptions

FAST_WORKERS = {
    "WAGW_LEASE_TTL_MS": "3000",
    "WAGW_HEARTBEAT_INTERVAL_MS": "500",
    "WAGW_LEASE_SAFETY_MARGIN_MS": "1000",
    "WAGW_CLAIM_INTERVAL_MS": "300",
    "WAGW_AUTH_BACKUP_INTERVAL_SECONDS": "2",
    "WAGW_WORKER_CAPACITY": "10",
    "WAGW_SEND_GAP_MS": "0",  # no anti-ban pacing: the tests send in bursts and count at once
    "WAGW_SEND_JITTER_MS": "0",
}


@pytest.fixture(scope="session")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSystem]:
    options = SystemOptions(
        ports=Ports.free(workers=2),
        workdir=tmp_path_factory.mktemp("system"),
        retry_schedule=json.dumps([1, 1, 1]),
        schedules=False,
        worker_env=FAST_WORKERS,
    )
    running = LocalSystem(options)
    try:
        running.start()
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def demo(system: LocalSystem) -> Demo:
    return system.create_demo_tenant("e2e workspace")
