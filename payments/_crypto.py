"""Secrets at rest: AES-GCM for account holder details, sha256 for API keys."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["Sealer", "hash_api_key", "keys_match", "new_api_key"]

_NONCE = 12


class Sealer:
    """Encrypts small blobs with AES-256-GCM; ``aad`` binds a blob to its row."""

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def __repr__(self) -> str:  # never show key material
        return "Sealer(<key hidden>)"

    def seal(self, plaintext: bytes, aad: bytes = b"") -> bytes:
        """nonce || ciphertext+tag."""
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, plaintext, aad)

    def open(self, blob: bytes, aad: bytes = b"") -> bytes:
        """Decrypt a blob made by ``seal``; raises ``cryptography.exceptions.InvalidTag``."""
        return self._aead.decrypt(blob[:_NONCE], blob[_NONCE:], aad)


def new_api_key(prefix: str) -> str:
    """A 256-bit random API key; high entropy makes a plain sha256 hash sufficient."""
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def hash_api_key(key: str) -> bytes:
    """The stored form of an API key."""
    return hashlib.sha256(key.encode("utf-8")).digest()


def keys_match(stored_hash: bytes, presented: str) -> bool:
    """Constant-time comparison of a presented key against a stored hash."""
    return hmac.compare_digest(stored_hash, hash_api_key(presented))
