"""Optional encryption at rest: AES-256-GCM, a fresh 96-bit nonce per file.

File layout: b"FUR1" | nonce (12 bytes) | ciphertext+tag. The sha256 we store and verify is
of the plaintext audio, so a file's identity does not depend on the key.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.errors import ConfigError, FollowupError

MAGIC = b"FUR1"


class DecryptionFailed(FollowupError):
    code = "recording_decryption_failed"


class RecordingCipher:
    """Encrypts and decrypts recording bytes with one key from the settings."""

    def __init__(self, key_b64: str) -> None:
        try:
            key = base64.b64decode(key_b64, validate=True)
        except ValueError as exc:
            raise ConfigError("recordings.encryption_key", "not valid base64") from exc
        if len(key) != 32:
            raise ConfigError("recordings.encryption_key", "must be 32 bytes (base64 of 256 bits)")
        self._aead = AESGCM(key)

    @staticmethod
    def new_key() -> str:
        return base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()

    def encrypt(self, plain: bytes, associated: bytes) -> bytes:
        nonce = os.urandom(12)
        return MAGIC + nonce + self._aead.encrypt(nonce, plain, associated)

    def decrypt(self, blob: bytes, associated: bytes) -> bytes:
        if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + 12 + 16:
            raise DecryptionFailed("not an encrypted recording")
        nonce = blob[len(MAGIC):len(MAGIC) + 12]
        try:
            return self._aead.decrypt(nonce, blob[len(MAGIC) + 12:], associated)
        except InvalidTag as exc:
            raise DecryptionFailed("recording does not decrypt: wrong key or altered") from exc
