"""The webhook URL check is relaxed only by an explicit local-only setting, never by `WAGW_ENV=dev` alone (the dev
stack in AWS runs with WAGW_ENV=dev, and its deliver function sits inside the VPC)."""

from __future__ import annotations

import pytest

from shared.delivery.urlsafety import UnsafeUrlError, check_url, is_strict
from tests.conftest import refresh_settings


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/hook", "https://10.0.0.5/hook", "https://169.254.169.254/"])
async def test_dev_without_the_local_setting_refuses_internal_and_plain_http_urls(
    env: pytest.MonkeyPatch, url: str
) -> None:
    # Given WAGW_ENV=dev, as the CDK app sets it for the dev stack, and no local-only setting
    env.setenv("WAGW_ENV", "dev")
    env.delenv("WAGW_ALLOW_LOCAL_WEBHOOKS", raising=False)
    refresh_settings()
    # When a tenant names an internal or plain-http URL
    # Then it is refused
    assert is_strict()
    with pytest.raises(UnsafeUrlError):
        await check_url(url)


async def test_the_local_setting_relaxes_the_check_in_dev_only(env: pytest.MonkeyPatch) -> None:
    # Given the local-only setting (make run, the tests)
    env.setenv("WAGW_ALLOW_LOCAL_WEBHOOKS", "true")
    env.setenv("WAGW_ENV", "dev")
    refresh_settings()
    # Then a local receiver is allowed in dev
    await check_url("http://127.0.0.1:8080/hook")
    # And the same setting changes nothing in staging
    env.setenv("WAGW_ENV", "staging")
    env.setenv("WAGW_ADMIN_API_KEY", "a-real-admin-key-for-this-test-only")
    env.setenv("WAGW_PRODUCER_KEYS", '{"k1": "whsec_c3RhZ2luZy10ZXN0LWtleS0wMTIzNDU2Nzg5"}')
    refresh_settings()
    assert is_strict()
    with pytest.raises(UnsafeUrlError):
        await check_url("http://127.0.0.1:8080/hook")
