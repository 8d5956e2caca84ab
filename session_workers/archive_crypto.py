"""Envelope encryption of auth archives: whoever holds an archive holds the WhatsApp account.

Each archive gets its own data key from KMS (GenerateDataKey, AES-256); the archive is sealed with AES-256-GCM
under it and only the KMS-encrypted data key is stored beside the ciphertext. Both layers are bound to the
session: the KMS encryption context names the session id (KMS refuses to decrypt the data key under another),
and the GCM associated data carries the session id, the strategy and the archive's digest (an archive, or its
sealed data key, copied into another session's record does not open). Rotation: KMS key rotation keeps old
key material for Decrypt, so old archives open; an archive sealed under a key other than the configured one
(or not sealed at all) opens and is reported `stale`, and the next save re-seals it under the current key.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ENVELOPE = "kms-aes256gcm/1"
NONCE_BYTES = 12
KEY_ARN_CACHE_SECONDS = 300.0  # an alias moved to a new key is noticed within this


class ArchiveUnreadable(Exception):
    """An archive that cannot be opened. `status` is machine-readable, `reason` says what to do."""

    def __init__(self, status: str, reason: str, transient: bool = False) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason
        self.transient = transient  # the key service may answer later: do not start the session without it


@dataclass(frozen=True)
class DataKey:
    plaintext: bytes
    encrypted: bytes
    key_arn: str


@dataclass(frozen=True)
class Sealed:
    ciphertext: bytes
    encrypted_key: bytes
    key_arn: str
    nonce: bytes


class KeyProvider(Protocol):
    """Where data keys come from. KMS in AWS and on LocalStack (the same code; endpoint from AWS_ENDPOINT_URL)."""

    def current_key_arn(self) -> str: ...
    def generate(self, context: dict[str, str]) -> DataKey: ...
    def decrypt(self, encrypted: bytes, context: dict[str, str]) -> tuple[bytes, str]: ...


class KmsKeyProvider:
    def __init__(self, key_id: str) -> None:
        self.key_id = key_id
        self._arn: tuple[str, float] | None = None

    def _kms(self) -> Any:
        from shared.aws import client

        return client("kms")

    def current_key_arn(self) -> str:
        if self._arn is None or time.monotonic() - self._arn[1] > KEY_ARN_CACHE_SECONDS:
            try:
                arn = self._kms().describe_key(KeyId=self.key_id)["KeyMetadata"]["Arn"]
            except Exception as exc:
                raise ArchiveUnreadable("key_unavailable", _kms_reason(exc, self.key_id), transient=True) from exc
            self._arn = (str(arn), time.monotonic())
        return self._arn[0]

    def generate(self, context: dict[str, str]) -> DataKey:
        reply = self._kms().generate_data_key(KeyId=self.key_id, KeySpec="AES_256", EncryptionContext=context)
        return DataKey(reply["Plaintext"], reply["CiphertextBlob"], str(reply["KeyId"]))

    def decrypt(self, encrypted: bytes, context: dict[str, str]) -> tuple[bytes, str]:
        kms = self._kms()
        try:
            reply = kms.decrypt(CiphertextBlob=encrypted, EncryptionContext=context)
        except kms.exceptions.InvalidCiphertextException as exc:
            raise ArchiveUnreadable(
                "wrong_session",
                "KMS refused the archive's data key under this session's encryption context: the archive was "
                "sealed for another session (copied or moved) or altered",
            ) from exc
        except Exception as exc:
            raise ArchiveUnreadable("key_unavailable", _kms_reason(exc, "the archive's key"), transient=True) from exc
        return reply["Plaintext"], str(reply["KeyId"])


def _kms_reason(exc: Exception, key: str) -> str:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
    permanent = {"KMSInvalidStateException", "DisabledException", "NotFoundException", "AccessDeniedException"}
    hint = "the key is disabled, pending deletion, missing or not granted to this role" if code in permanent else ""
    return f"KMS could not use {key} ({code}){': ' + hint if hint else ''}"


def encryption_context(session_id: str) -> dict[str, str]:
    return {"wagw:purpose": "auth-archive", "wagw:session_id": session_id}


def associated_data(session_id: str, strategy: str, sha256: str) -> bytes:
    return "\x00".join((ENVELOPE, session_id, strategy, sha256)).encode()


def seal(provider: KeyProvider, session_id: str, strategy: str, sha256: str, data: bytes) -> Sealed:
    key = provider.generate(encryption_context(session_id))
    nonce = os.urandom(NONCE_BYTES)
    ciphertext = AESGCM(key.plaintext).encrypt(nonce, data, associated_data(session_id, strategy, sha256))
    return Sealed(ciphertext, key.encrypted, key.key_arn, nonce)


def open_sealed(provider: KeyProvider, session_id: str, strategy: str, sha256: str, sealed: Sealed) -> bytes:
    plaintext_key, _ = provider.decrypt(sealed.encrypted_key, encryption_context(session_id))
    try:
        return AESGCM(plaintext_key).decrypt(
            sealed.nonce, sealed.ciphertext, associated_data(session_id, strategy, sha256)
        )
    except InvalidTag as exc:
        raise ArchiveUnreadable(
            "wrong_session",
            "the archive does not authenticate for this session: it belongs to another session or was altered",
        ) from exc
