"""EmailAI / Inbox Zero OAuth token encryption, byte-compatible with its Node code.

EmailAI stores ``Account.access_token`` / ``refresh_token`` as a hex string of
``IV(16) | authTag(16) | ciphertext`` encrypted with AES-256-GCM under
``scryptSync(GOOGLE_ENCRYPT_SECRET, GOOGLE_ENCRYPT_SALT, 32)`` (Node defaults N=16384, r=8,
p=1; secret and salt as UTF-8). Newer upstream Inbox Zero prefixes the same payload with
``v1:`` and names the variables ``EMAIL_ENCRYPT_SECRET`` / ``EMAIL_ENCRYPT_SALT``; both are
accepted. Like upstream, a value that is not hex at all is taken to be a plaintext token
(rows written before encryption was switched on).

Errors never include the token, the key, the secret or the salt.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mailvoice.errors import MailvoiceError

IV_LENGTH = 16
TAG_LENGTH = 16
KEY_LENGTH = 32
SCRYPT_N = 16384
SCRYPT_R = 8
SCRYPT_P = 1

WRONG_SECRET = "cannot decrypt tokens: wrong GOOGLE_ENCRYPT_SECRET/SALT?"

_HEX = re.compile(r"^[0-9a-fA-F]+$")
_VERSIONED = re.compile(r"^v(\d+):([0-9a-fA-F]+)$")


@lru_cache(maxsize=8)
def derive_key(secret: str, salt: str) -> bytes:
    """Node's ``scryptSync(secret, salt, 32)`` with its default cost parameters."""
    if not secret or not salt:
        raise MailvoiceError(
            "GOOGLE_ENCRYPT_SECRET and GOOGLE_ENCRYPT_SALT must both be set to read EmailAI tokens"
        )
    return hashlib.scrypt(
        secret.encode("utf-8"),
        salt=salt.encode("utf-8"),
        n=SCRYPT_N,
        r=SCRYPT_R,
        p=SCRYPT_P,
        maxmem=64 * 1024 * 1024,
        dklen=KEY_LENGTH,
    )


def secret_and_salt_from_env(env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """``GOOGLE_ENCRYPT_SECRET``/``_SALT`` (EmailAI), else ``EMAIL_ENCRYPT_*`` (newer upstream)."""
    env = os.environ if env is None else env
    secret = env.get("GOOGLE_ENCRYPT_SECRET") or env.get("EMAIL_ENCRYPT_SECRET") or ""
    salt = env.get("GOOGLE_ENCRYPT_SALT") or env.get("EMAIL_ENCRYPT_SALT") or ""
    if not secret or not salt:
        raise MailvoiceError(
            "GOOGLE_ENCRYPT_SECRET and GOOGLE_ENCRYPT_SALT must both be set "
            "(the values from EmailAI's .env) to read its stored tokens"
        )
    return secret, salt


def encrypt_token(plaintext: str, secret: str, salt: str, *, iv: bytes | None = None,
                  version_prefix: bool = False) -> str:
    """Encrypt exactly like EmailAI's ``encryptToken`` (for tests and fixtures)."""
    key = derive_key(secret, salt)
    iv = os.urandom(IV_LENGTH) if iv is None else iv
    if len(iv) != IV_LENGTH:
        raise ValueError("iv must be 16 bytes")
    sealed = AESGCM(key).encrypt(iv, plaintext.encode("utf-8"), None)  # ciphertext | tag
    ciphertext, tag = sealed[:-TAG_LENGTH], sealed[-TAG_LENGTH:]
    payload = (iv + tag + ciphertext).hex()
    return f"v1:{payload}" if version_prefix else payload


def decrypt_token(value: str | None, secret: str, salt: str) -> str | None:
    """Decrypt one stored token; ``None``/empty stays ``None``.

    A wrong secret or salt (GCM tag mismatch) raises ``MailvoiceError(WRONG_SECRET)``.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    m = _VERSIONED.match(value)
    if m:
        if m.group(1) != "1":
            raise MailvoiceError(f"cannot decrypt tokens: unknown encryption version v{m.group(1)}")
        payload = m.group(2)
    elif _HEX.match(value) and len(value) % 2 == 0 and len(value) >= 2 * (IV_LENGTH + TAG_LENGTH):
        payload = value
    else:
        # Not an encrypted payload: a plaintext token, as upstream's decryptToken returns it.
        return value
    buf = bytes.fromhex(payload)
    if len(buf) < IV_LENGTH + TAG_LENGTH:
        raise MailvoiceError("cannot decrypt tokens: stored ciphertext is too short")
    iv = buf[:IV_LENGTH]
    tag = buf[IV_LENGTH:IV_LENGTH + TAG_LENGTH]
    ciphertext = buf[IV_LENGTH + TAG_LENGTH:]
    try:
        plain = AESGCM(derive_key(secret, salt)).decrypt(iv, ciphertext + tag, None)
    except InvalidTag:
        raise MailvoiceError(WRONG_SECRET) from None
    try:
        return plain.decode("utf-8")
    except UnicodeDecodeError:
        raise MailvoiceError("cannot decrypt tokens: decrypted token is not UTF-8") from None
