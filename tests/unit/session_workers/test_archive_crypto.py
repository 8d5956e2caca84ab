"""The seal's bindings, without KMS: a data key sealed by an in-memory key service that checks its context as KMS
does. (The same paths against LocalStack's KMS: tests/integration/session_workers/test_archive_encryption.py.)"""

from __future__ import annotations

import json
import os
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from session_workers.archive_crypto import ArchiveUnreadable, DataKey, open_sealed, seal

ARN = "arn:aws:kms:us-east-1:000000000000:key/test"


class InMemoryKeys:
    """Wraps data keys under one master key with the encryption context as associated data, like KMS."""

    def __init__(self) -> None:
        self.master = AESGCM(os.urandom(32))

    def current_key_arn(self) -> str:
        return ARN

    def generate(self, context: dict[str, str]) -> DataKey:
        plaintext, nonce = os.urandom(32), os.urandom(12)
        wrapped = nonce + self.master.encrypt(nonce, plaintext, json.dumps(context, sort_keys=True).encode())
        return DataKey(plaintext, wrapped, ARN)

    def decrypt(self, encrypted: bytes, context: dict[str, str]) -> tuple[bytes, str]:
        try:
            return self.master.decrypt(
                encrypted[:12], encrypted[12:], json.dumps(context, sort_keys=True).encode()
            ), ARN
        except Exception as exc:
            raise ArchiveUnreadable("wrong_session", "context mismatch") from exc


def test_a_sealed_archive_opens_only_with_its_session_strategy_and_digest() -> None:
    keys = InMemoryKeys()
    sealed = seal(keys, "sess_a", "context", "d1", b"archive bytes")
    assert b"archive" not in sealed.ciphertext and sealed.key_arn == ARN and len(sealed.nonce) == 12
    assert open_sealed(keys, "sess_a", "context", "d1", sealed) == b"archive bytes"
    for session, strategy, sha in (
        ("sess_b", "context", "d1"),
        ("sess_a", "profile", "d1"),
        ("sess_a", "context", "d2"),
    ):
        with pytest.raises(ArchiveUnreadable) as refused:
            open_sealed(keys, session, strategy, sha, sealed)
        assert refused.value.status == "wrong_session"


def test_an_altered_ciphertext_or_a_data_key_of_another_archive_does_not_open() -> None:
    keys = InMemoryKeys()
    sealed = seal(keys, "sess_a", "context", "d1", b"archive bytes")
    flipped = bytes([sealed.ciphertext[0] ^ 1]) + sealed.ciphertext[1:]
    other = seal(keys, "sess_a", "context", "d1", b"another archive")
    for altered in (replace(sealed, ciphertext=flipped), replace(sealed, encrypted_key=other.encrypted_key)):
        with pytest.raises(ArchiveUnreadable, match="another session or was altered"):
            open_sealed(keys, "sess_a", "context", "d1", altered)
