"""Standard Webhooks signatures (https://www.standardwebhooks.com): sign and verify.

Signed content is `{msg_id}.{timestamp}.{body}`, HMAC-SHA256 with the base64-decoded part of a
`whsec_` secret, sent as `v1,<base64>`; several space-separated signatures during key rotation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

SECRET_PREFIX = "whsec_"


class SignatureError(Exception):
    """The request's Standard Webhooks headers are missing, stale or do not match any key."""


@dataclass(frozen=True)
class SignedHeaders:
    msg_id: str
    timestamp: int
    signature: str

    def as_dict(self) -> dict[str, str]:
        return {
            "webhook-id": self.msg_id,
            "webhook-timestamp": str(self.timestamp),
            "webhook-signature": self.signature,
        }


def generate_secret(num_bytes: int = 32) -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(num_bytes)).decode()


def secret_key(secret: str) -> bytes:
    encoded = secret[len(SECRET_PREFIX) :] if secret.startswith(SECRET_PREFIX) else secret
    try:
        return base64.b64decode(encoded, validate=True)
    except ValueError as exc:
        raise ValueError("a webhook secret must be 'whsec_' followed by base64") from exc


def _digest(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def sign(secrets_: Iterable[str], msg_id: str, body: bytes, timestamp: int | None = None) -> SignedHeaders:
    """Sign `body` with every secret given (one `v1,` entry each, for rotation overlap)."""
    stamp = int(time.time()) if timestamp is None else timestamp
    entries = [f"v1,{_digest(secret_key(s), msg_id, stamp, body)}" for s in secrets_]
    if not entries:
        raise ValueError("at least one signing secret is needed")
    return SignedHeaders(msg_id=msg_id, timestamp=stamp, signature=" ".join(entries))


def verify(
    keys: Mapping[str, str],
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance_seconds: int = 300,
    now: float | None = None,
) -> str:
    """Check the headers against `keys` (name -> secret); return the name of the key that matched."""
    msg_id = headers.get("webhook-id")
    stamp_text = headers.get("webhook-timestamp")
    signature_header = headers.get("webhook-signature")
    if not msg_id or not stamp_text or not signature_header:
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature header")
    try:
        stamp = int(stamp_text)
    except ValueError as exc:
        raise SignatureError("webhook-timestamp is not an integer") from exc
    current = time.time() if now is None else now
    if abs(current - stamp) > tolerance_seconds:
        raise SignatureError("webhook-timestamp is too far from now")
    offered = [part.split(",", 1)[1] for part in signature_header.split() if part.startswith("v1,")]
    for name, secret in keys.items():
        expected = _digest(secret_key(secret), msg_id, stamp, body)
        if any(hmac.compare_digest(expected, candidate) for candidate in offered):
            return name
    raise SignatureError("no signature matches a known key")
