"""The browserless page stand-in (WAGW_PAGE=standin) drives a real worker end to end, so bench/scale.py's machinery
cannot rot: claim, ready, a send answered once, an inbound message, the auth archive saved; and it is refused
outside dev."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from session_workers.browser import make_host
from session_workers.simulator.ingest_stub import IngestStub
from session_workers.standin import StandinHost, StandinSettings
from session_workers.worker import Worker
from shared import redis_keys as keys
from shared.commands import SendTextCommand, enqueue_command
from shared.settings import get_settings
from tests.integration.session_workers.conftest import FAST, eventually, new_session


@pytest.fixture
def standin_stub() -> Iterator[IngestStub]:
    server = IngestStub().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def standin_env(redis: Redis, env: pytest.MonkeyPatch, standin_stub: IngestStub, tmp_path: Path) -> Path:
    for name, value in FAST.items():
        env.setenv(name, value)
    env.setenv("WAGW_INGEST_URL", standin_stub.url)
    env.setenv("WAGW_PAGE", "standin")
    env.setenv("WAGW_STANDIN_DIR", str(tmp_path))
    env.setenv("WAGW_STANDIN_ARCHIVE_KB", "64")
    get_settings.cache_clear()
    return tmp_path


def phone_log(directory: Path) -> list[dict[str, str]]:
    return [json.loads(line) for p in directory.glob("phone-*.jsonl") for line in p.read_text().splitlines()]


async def test_a_standin_session_is_claimed_ready_sends_once_and_reports_an_inbound_message(
    redis: Redis, standin_env: Path, standin_stub: IngestStub, workers: list[Worker]
) -> None:
    # Given a worker whose host the setting chose, and a session waiting to be claimed
    settings = get_settings()
    host = make_host(settings)
    assert isinstance(host, StandinHost)
    worker = Worker(settings, host=host, health_port=None)
    workers.append(worker)
    await worker.start()
    sid = await new_session(redis, "sess_standin")

    # When it is claimed, a send is enqueued and a contact writes
    await eventually(lambda: "ready" in standin_stub.statuses(sid), 10, "the session ready")
    await enqueue_command(
        redis, SendTextCommand(session_id=sid, message_id="msg_1", client_message_id="c1", to="6281234", text="hi")
    )
    host.pages[sid].deliver_inbound("hello from a contact")

    # Then the send is reported once, the inbound message too, and the archive is in Redis
    sent = await eventually(lambda: standin_stub.select("message.sent", sid), 10, "message.sent")
    received = await eventually(lambda: standin_stub.select("message.received", sid), 10, "message.received")
    assert [e["data"]["client_message_id"] for e in sent] == ["c1"]
    assert [e["data"]["body"] for e in received] == ["hello from a contact"]
    assert await eventually(lambda: redis.exists(keys.session_auth(sid)), 10, "auth archive saved")
    assert [r["value"] for r in phone_log(standin_env) if r["kind"] == "out"] == [sent[0]["data"]["message_id"]]
    # and the page's opening is in the phone log (a benchmark's undriven gaps are measured from it)
    assert [r["open"] for r in phone_log(standin_env) if r["kind"] == "page" and r["value"] == sid] == [True]


async def test_the_standin_drives_inbound_at_the_controlled_rate(
    redis: Redis, standin_env: Path, standin_stub: IngestStub, workers: list[Worker]
) -> None:
    # Given a ready stand-in session
    worker = Worker(get_settings(), host=make_host(get_settings()), health_port=None)
    workers.append(worker)
    await worker.start()
    sid = await new_session(redis, "sess_rate")
    await eventually(lambda: "ready" in standin_stub.statuses(sid), 10, "the session ready")

    # When the control file asks for 600 messages a minute per session
    (standin_env / "control.json").write_text(json.dumps({"inbound_per_minute": 600}))

    # Then contacts' messages arrive as message.received events
    await eventually(lambda: len(standin_stub.select("message.received", sid)) >= 5, 10, "five inbound messages")


def test_the_standin_is_refused_outside_dev() -> None:
    # Given production settings / When a stand-in host is made / Then it is refused
    with pytest.raises(RuntimeError, match="benchmarks only"):
        StandinHost(get_settings().model_copy(update={"env": "prod"}), StandinSettings(page="standin"))
