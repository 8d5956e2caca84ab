"""Pure helpers of the session worker: ids, injection choice, archives, backoff, metrics text."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import httpx
import pytest

from session_workers.browser import LOCAL_STORAGE_SIDECAR, archive_profile, extract_profile
from session_workers.driver import api_message_suffix, chat_id, is_api_message, send_failure, should_inject
from session_workers.metrics import WorkerMetrics
from session_workers.outbox import OutboxPoster
from shared.settings import Settings


def test_chat_ids_from_phone_numbers_and_chat_ids() -> None:
    assert chat_id("+1 (555) 000-1234") == "15550001234@c.us"
    assert chat_id("12036304@g.us") == "12036304@g.us"


def test_api_message_ids_are_deterministic_per_session_and_client_id() -> None:
    first = api_message_suffix("sess_1", "order-1")
    assert first == api_message_suffix("sess_1", "order-1")
    assert first.startswith("3EB0") and len(first) == 24 and first == first.upper()
    assert first != api_message_suffix("sess_2", "order-1")
    assert first != api_message_suffix("sess_1", "order-2")


def test_api_message_ids_are_told_apart_from_messages_typed_on_the_phone() -> None:
    # Given our key for an API send, on a LID chat and in a group (with our own LID as participant)
    suffix = api_message_suffix("sess_1", "order-1")
    # Then it is recognised, in any chat, only for its own session
    assert is_api_message("sess_1", f"true_123456789012345@lid_{suffix}")
    assert is_api_message("sess_1", f"true_1203630@g.us_{suffix}_99887766554433@lid")
    assert not is_api_message("sess_2", f"true_123456789012345@lid_{suffix}")
    # And ids WhatsApp itself generates (phone, WhatsApp Web) are not ours
    assert not is_api_message("sess_1", "true_15550001@c.us_3A5F0C2E9B1D4A7788")
    assert not is_api_message("sess_1", "true_15550001@c.us_3EB0A1B2C3D4E5F60718293A")
    assert not is_api_message("sess_1", "garbage")


@pytest.mark.parametrize(
    ("result", "ack", "expected"),
    [
        ("OK", 1, None),
        ("OK", 0, None),
        (None, 1, None),
        ("ERROR_NETWORK", 0, "send_result:ERROR_NETWORK"),
        ("ERROR_UNKNOWN", 1, "send_result:ERROR_UNKNOWN"),
        ("OK", -1, "ack_error:-1"),
        (None, -4, "ack_error:-4"),
    ],
)
def test_a_send_result_that_is_not_ok_or_an_error_ack_is_a_failure(result: str | None, ack: int, expected: str) -> None:
    # wa-js resolves failures (chat/functions/sendRawMessage.ts): they must be read, never assumed away
    assert send_failure(result, ack) == expected


@pytest.mark.parametrize(
    ("url", "mode", "expected"),
    [
        ("https://web.whatsapp.com/", "auto", True),
        ("http://127.0.0.1:8091/", "auto", False),
        ("http://127.0.0.1:8091/", "always", True),
        ("https://web.whatsapp.com/", "never", False),
    ],
)
def test_wa_js_is_injected_only_on_whatsapp(url: str, mode: str, expected: bool) -> None:
    assert should_inject(Settings(whatsapp_url=url, wa_js_inject=mode)) is expected  # type: ignore[arg-type]


def test_profile_archive_round_trip_is_deterministic(tmp_path: Path) -> None:
    # Given a profile with IndexedDB and Local Storage files, a lock file, and unrelated caches
    source = tmp_path / "profile"
    for name, data in {
        "Default/IndexedDB/http_x_0.indexeddb.leveldb/000003.log": b"idb",
        "Default/IndexedDB/http_x_0.indexeddb.leveldb/LOCK": b"",
        "Default/Local Storage/leveldb/000005.ldb": b"ls",
        "Default/Cookies": b"cookies",
        "Default/Cache/data_0": b"cache",
    }.items():
        path = source / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    # When it is archived twice and extracted
    first = archive_profile(source, b'{"origin":"x","items":[]}')
    assert first == archive_profile(source, b'{"origin":"x","items":[]}')
    target = tmp_path / "restored"
    extract_profile(first, target)
    # Then the auth stores come back, without the lock or the cache
    assert (target / "Default/IndexedDB/http_x_0.indexeddb.leveldb/000003.log").read_bytes() == b"idb"
    assert (target / "Default/Local Storage/leveldb/000005.ldb").read_bytes() == b"ls"
    assert (target / "Default/Cookies").read_bytes() == b"cookies"
    assert (target / LOCAL_STORAGE_SIDECAR).exists()
    assert not (target / "Default/Cache").exists()
    assert not (target / "Default/IndexedDB/http_x_0.indexeddb.leveldb/LOCK").exists()


def test_archives_with_paths_outside_the_profile_are_refused(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("../escape")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(tarfile.TarError):
        extract_profile(buffer.getvalue(), tmp_path / "p")


def test_backoff_grows_is_capped_and_honours_retry_after() -> None:
    poster = OutboxPoster(redis=None, stream="s", dead_stream="d", http=httpx.AsyncClient(), backoff_max=10)  # type: ignore[arg-type]
    delays = [poster.backoff(None) for _ in range(8)]
    assert delays[0] < 1 and delays[3] > delays[0]
    assert max(delays) <= 10
    assert poster.backoff(30) == 30  # Retry-After wins over the cap


def test_the_outbox_linger_follows_the_recent_flow() -> None:
    # Given a poster that may wait up to 0.2 s for company
    poster = OutboxPoster(redis=None, stream="s", dead_stream="d", http=httpx.AsyncClient(), linger=0.2)  # type: ignore[arg-type]
    # When nothing was posted lately, or a trickle (one event a second), it does not wait at all
    assert poster.linger_now(now=100.0) == 0.0
    poster.posted_recently.extend((96.0 + i, 1) for i in range(5))
    assert poster.linger_now(now=100.0) == 0.0
    # When ten events a second were posted over the last 5 s, it waits for about two more: its longest, 0.2 s
    poster.posted_recently.clear()
    poster.posted_recently.extend((95.5 + i * 0.5, 5) for i in range(10))
    assert poster.linger_now(now=100.0) == pytest.approx(0.2)
    # When forty a second, a quarter of that
    poster.posted_recently.extend((99.9, 150) for _ in range(1))
    assert poster.linger_now(now=100.0) == pytest.approx(2 / 40)
    # And what was posted longer ago than the window no longer counts
    assert poster.linger_now(now=200.0) == 0.0
    assert not poster.posted_recently
    # And a linger of 0 never waits
    off = OutboxPoster(redis=None, stream="s", dead_stream="d", http=httpx.AsyncClient(), linger=0)  # type: ignore[arg-type]
    off.posted_recently.append((100.0, 1000))
    assert off.linger_now(now=100.0) == 0.0


def test_prometheus_text_names_every_metric() -> None:
    metrics = WorkerMetrics(restarts=2)
    metrics.statuses.update({"ready": 3, "qr": 1})
    text = metrics.prometheus(worker_id="w1", outbox_depth=7, pss_bytes=1024, capacity=50)
    assert 'wagw_worker_sessions{worker="w1",status="ready"} 3' in text
    assert 'wagw_worker_outbox_depth{worker="w1"} 7' in text
    assert 'wagw_worker_restarts_total{worker="w1"} 2' in text
    assert 'wagw_worker_browser_pss_bytes{worker="w1"} 1024' in text


def test_prometheus_text_has_the_inbound_window_and_the_fidelity_counters() -> None:
    # Given 100 measured windows from the page taking a message to its outbox entry, 1..100 ms
    metrics = WorkerMetrics(wa_js_incompatible=1, reconciled=4)
    metrics.inbound_to_outbox_ms.extend(float(ms) for ms in range(1, 101))
    text = metrics.prometheus(worker_id="w1", outbox_depth=0, pss_bytes=0, capacity=50)
    # Then its p50, p99 and max are published, beside the counters
    assert 'wagw_worker_inbound_to_outbox_ms{worker="w1",quantile="0.5"} 51.0' in text
    assert 'wagw_worker_inbound_to_outbox_ms{worker="w1",quantile="0.99"} 100.0' in text
    assert 'wagw_worker_inbound_to_outbox_ms{worker="w1",quantile="1"} 100.0' in text
    assert 'wagw_worker_wa_js_incompatible_total{worker="w1"} 1' in text
    assert 'wagw_worker_reconciled_messages_total{worker="w1"} 4' in text


def test_start_concurrency_follows_the_strategy_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    from session_workers import worker

    # Given a worker on 2 cores
    monkeypatch.setattr(worker.os, "cpu_count", lambda: 2)
    # When nothing is set, then profile browsers start 6 at a time and contexts 4 per core (at least 6)
    assert worker.start_concurrency(Settings(auth_strategy="profile")) == 6
    assert worker.start_concurrency(Settings(auth_strategy="context")) == 8
    monkeypatch.setattr(worker.os, "cpu_count", lambda: 1)
    assert worker.start_concurrency(Settings(auth_strategy="context")) == 6
    # And a setting wins over either
    assert worker.start_concurrency(Settings(auth_strategy="context", worker_start_concurrency=3)) == 3
