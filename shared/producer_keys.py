"""Producer signing keys: producers sign with every one, ingest accepts a match with any (shared/producer.py).
A Secrets Manager secret in AWS (a JSON object, name -> whsec_ secret; order does not matter), settings locally."""

from __future__ import annotations

from aws_lambda_powertools.utilities import parameters

from shared.settings import get_settings

KEYS_CACHE_SECONDS = 300


def producer_keys() -> dict[str, str]:
    settings = get_settings()
    if settings.producer_keys_secret_name:
        loaded = parameters.get_secret(settings.producer_keys_secret_name, transform="json", max_age=KEYS_CACHE_SECONDS)
        if not isinstance(loaded, dict) or not loaded:
            raise RuntimeError("the producer keys secret must be a JSON object of name -> whsec_ secret")
        return {str(name): str(secret) for name, secret in loaded.items()}
    return {name: secret.get_secret_value() for name, secret in settings.producer_keys.items()}
