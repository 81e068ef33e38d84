"""Encryption at rest for stored secrets (Kakao tokens): Fernet keyed by `DATA_ENCRYPTION_KEY`."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from loguru import logger

from app.core.settings import SecuritySettings

# Used only when DATA_ENCRYPTION_KEY is unset (development); production refuses to start then.
_DEV_KEY_MATERIAL = "sentinel-development-only-data-key"


class SecretDecryptionError(Exception):
    """A stored secret cannot be decrypted with the current key (key changed or data corrupt)."""


def _fernet_key(material: str) -> bytes:
    raw = material.strip().encode()
    try:
        if len(base64.urlsafe_b64decode(raw)) == 32:
            return raw  # already a Fernet key (`Fernet.generate_key()`)
    except ValueError:
        pass
    # Any other string: derive a 32-byte key from it.
    return base64.urlsafe_b64encode(hashlib.sha256(raw).digest())


class SecretBox:
    """Encrypts and decrypts small secrets; the key never leaves this object."""

    def __init__(self, settings: SecuritySettings) -> None:
        material = settings.data_encryption_key
        if not material:
            logger.warning(
                "DATA_ENCRYPTION_KEY is not set: stored secrets use a development key "
                "(set one in production, e.g. `python -c 'from cryptography.fernet import "
                "Fernet; print(Fernet.generate_key().decode())'`)"
            )
            material = _DEV_KEY_MATERIAL
        self._fernet = Fernet(_fernet_key(material))

    def encrypt(self, plain: str) -> str:
        return self._fernet.encrypt(plain.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise SecretDecryptionError("stored secret cannot be decrypted") from exc
