"""Agent API keys: 256 bits from the OS, stored as SHA-256 hex only.

A fast hash is right here (unlike user passwords): the key is random, not chosen by a person, so
there is nothing to brute-force, and every agent request pays for the check."""

from __future__ import annotations

import hashlib
import hmac
import secrets

KEY_PREFIX = "smk_"


def api_key_generate() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def api_key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def api_key_display_prefix(key: str) -> str:
    """Enough of the key to tell keys apart in the admin, far too little to use."""
    return key[: len(KEY_PREFIX) + 6]


def hashes_match(stored: str, candidate: str) -> bool:
    return hmac.compare_digest(stored.encode(), candidate.encode())


def claim_token_hash(token: str) -> str:
    """Lower-case hex SHA-256 of the claim token's UTF-8 bytes, as the agent computes it (contract §8)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
