"""In AWS the Redis AUTH token comes from Secrets Manager; the client factory must use it."""

from __future__ import annotations

import pytest

from shared.redis_client import close_redis, get_redis
from tests.conftest import refresh_settings
from wagw_local import services


async def test_client_authenticates_with_the_token_from_secrets_manager(
    env: pytest.MonkeyPatch, aws_endpoint: str
) -> None:
    # Given a Redis that requires a password, and the password in a Secrets Manager secret
    from shared import aws

    token = "elasticache-auth-token-0123456789"
    server = services.start_redis(password=token)
    name = "wagw/test/redis-auth"
    aws.secrets_manager().create_secret(Name=name, SecretString=token)
    try:
        env.setenv("WAGW_REDIS_URL", server.url)
        env.setenv("WAGW_REDIS_AUTH_SECRET_NAME", name)
        refresh_settings()
        # When the factory's client is used
        client = get_redis()
        # Then it is authenticated
        assert await client.ping() is True
        await close_redis()
    finally:
        aws.secrets_manager().delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
        server.stop()
