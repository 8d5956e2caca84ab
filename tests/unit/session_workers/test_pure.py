"""Pure helpers of the session worker: ids, injection choice, archives, backoff, metrics text."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import httpx
import pytest

from session_workers.browser import LOCAL_STORAGE_SIDECAR, archive_profile, extract_profile
from session_workers.driver import chat_id, should_inject, wa_message_id
from session_workers.metrics import WorkerMetrics
from session_workers.outbox import OutboxPoster
from shared.settings import Settings


def test_chat_ids_from_phone_numbers_and_chat_ids() -> None:
    assert chat_id("+1 (555) 000-1234") == "15550001234@c.us"
    assert chat_id("12036304@g.us") == "12036304@g.us"


def test_whatsapp_message_id_is_deterministic_per_session_and_client_id() -> None:
    first = wa_message_id("sess_1", "order-1", "15550001")
    assert first == wa_message_id("sess_1", "order-1", "15550001")
    assert first.startswith("true_15550001@c.us_3EB0") and len(first.rsplit("_", 1)[1]) == 20
    assert first != wa_message_id("sess_2", "order-1", "15550001")
    assert first != wa_message_id("sess_1", "order-2", "15550001")


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


def test_prometheus_text_names_every_metric() -> None:
    metrics = WorkerMetrics(restarts=2)
    metrics.statuses.update({"ready": 3, "qr": 1})
    text = metrics.prometheus(worker_id="w1", outbox_depth=7, pss_bytes=1024, capacity=50)
    assert 'wagw_worker_sessions{worker="w1",status="ready"} 3' in text
    assert 'wagw_worker_outbox_depth{worker="w1"} 7' in text
    assert 'wagw_worker_restarts_total{worker="w1"} 2' in text
    assert 'wagw_worker_browser_pss_bytes{worker="w1"} 1024' in text
