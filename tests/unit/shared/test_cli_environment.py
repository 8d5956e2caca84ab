"""`wagw status` and friends find the system `make run` started, unless pointed elsewhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.settings import get_settings
from wagw_local.system import adopt_running_environment, withdraw_environment

PUBLISHED = {"WAGW_REDIS_URL": "redis://127.0.0.1:6390/0", "AWS_ENDPOINT_URL": "http://127.0.0.1:4566"}


@pytest.fixture
def published(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in (*PUBLISHED, "WAGW_API_URL"):
        monkeypatch.setenv(name, "")  # recorded, so what the test adopts is undone afterwards
        monkeypatch.delenv(name)
    path = tmp_path / "local-env.json"
    path.write_text(json.dumps({**PUBLISHED, "WAGW_API_URL": "http://127.0.0.1:8080"}))
    yield path
    get_settings.cache_clear()


def test_a_shell_with_nothing_set_adopts_the_running_system(published: Path) -> None:
    # Given a running system's published environment and a shell that set nothing
    # When a wagw command starts
    adopted = adopt_running_environment(published)
    # Then it talks to that system's Redis
    assert adopted
    assert get_settings().redis_url == PUBLISHED["WAGW_REDIS_URL"]


def test_a_shell_pointed_at_a_deployment_keeps_its_target(published: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an operator who pointed the shell at another Redis
    monkeypatch.setenv("WAGW_REDIS_URL", "redis://elsewhere:6379/0")
    # When a wagw command starts
    adopted = adopt_running_environment(published)
    # Then nothing is adopted
    assert not adopted
    assert get_settings().redis_url == "redis://elsewhere:6379/0"


def test_nothing_is_adopted_once_the_system_stopped(published: Path) -> None:
    # Given the system stopped (it withdraws what it published)
    withdraw_environment(published)
    # When a wagw command starts, Then it adopts nothing
    assert not adopt_running_environment(published)
