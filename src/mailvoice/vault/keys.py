"""age keys, recipients and passphrases for the vault.

Rules: a secret key is never printed, never logged, never put in an error message and never
taken from argv. It comes from an identity file (``identity_file``) or from the environment
(``MAILVOICE_AGE_IDENTITY``: the key itself or the path of an identity file). A passphrase comes
from ``MAILVOICE_BACKUP_PASSPHRASE`` or from a file (first line).

pyrage 1.4 streams only for key recipients (``encrypt_io``/``decrypt_io``); its passphrase API
(``pyrage.passphrase``) is whole-buffer. A passphrase backup therefore encrypts the archive,
streaming, to a fresh one-off X25519 key and stores that key, wrapped with the passphrase (age
scrypt), as ``key.age`` beside the archive. ``age -d key.age > k; age -d -i k archive.tar.age``
decrypts it with the stock ``age`` tool.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pyrage

from ..errors import MailvoiceError
from ..workspace import atomic_open

ENV_IDENTITY = "MAILVOICE_AGE_IDENTITY"
ENV_PASSPHRASE = "MAILVOICE_BACKUP_PASSPHRASE"
ENV_RECIPIENTS = "MAILVOICE_AGE_RECIPIENTS"  # comma-separated public keys, when none are given
_SECRET_PREFIX = "AGE-SECRET-KEY-1"


def fingerprint(public_key: str) -> str:
    """A short, stable, public id for a recipient: sha256 of the public key text, 16 hex."""
    return hashlib.sha256(public_key.strip().encode()).hexdigest()[:16]


@dataclass(frozen=True)
class RecipientInfo:
    type: str  # "x25519" | "ssh" | "passphrase"
    public_key: str

    def as_dict(self) -> dict:
        return {"type": self.type, "public_key": self.public_key, "fingerprint": fingerprint(self.public_key)}


def new_identity(identity_file: str | os.PathLike, *, overwrite: bool = False) -> str:
    """``keys new``: write a fresh X25519 identity (0600, age-keygen format); return the PUBLIC key.

    The secret key only ever goes to the file; callers print the returned public key.
    """
    path = Path(identity_file).expanduser()
    if path.exists() and not overwrite:
        raise MailvoiceError(f"identity file already exists: {path} (refusing to overwrite a key)")
    ident = pyrage.x25519.Identity.generate()
    public = str(ident.to_public())
    created = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    with atomic_open(path, "w") as fh:
        fh.write(f"# created: {created}\n# public key: {public}\n{ident}\n")
    return public


def public_key_of(identity_file: str | os.PathLike) -> list[str]:
    """Public keys of the identities in a file (safe to print)."""
    return [str(i.to_public()) for i in _parse_identities(_read_secret_file(identity_file), "identity file")]


def _read_secret_file(path: str | os.PathLike) -> str:
    p = Path(path).expanduser()
    try:
        return p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MailvoiceError(f"file not found: {p}") from None
    except (OSError, UnicodeDecodeError):
        raise MailvoiceError(f"cannot read key file: {p}") from None


def _parse_identities(text: str, where: str) -> list:
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not line.startswith(_SECRET_PREFIX):
            raise MailvoiceError(f"{where}: not an age identity (expected lines starting AGE-SECRET-KEY-1)")
        try:
            out.append(pyrage.x25519.Identity.from_str(line))
        except Exception:
            raise MailvoiceError(f"{where}: malformed age identity") from None
    if not out:
        raise MailvoiceError(f"{where}: no age identity found")
    return out


def load_identities(identity_file: str | os.PathLike | None = None) -> list:
    """Identities from ``identity_file``, else from ``$MAILVOICE_AGE_IDENTITY`` (key or path). [] if none."""
    if identity_file is not None:
        return _parse_identities(_read_secret_file(identity_file), "identity file")
    env = os.environ.get(ENV_IDENTITY, "").strip()
    if not env:
        return []
    if _SECRET_PREFIX in env:
        return _parse_identities(env, f"${ENV_IDENTITY}")
    return _parse_identities(_read_secret_file(env), f"${ENV_IDENTITY} file")


def load_passphrase(passphrase_file: str | os.PathLike | None = None, *, env: bool = True) -> str | None:
    """Passphrase from a file (first line) or ``$MAILVOICE_BACKUP_PASSPHRASE``; None if neither."""
    if passphrase_file is not None:
        text = _read_secret_file(passphrase_file)
        value = text.splitlines()[0] if text else ""
        if not value:
            raise MailvoiceError("passphrase file is empty")
        return value
    if env:
        value = os.environ.get(ENV_PASSPHRASE)
        if value:
            return value
    return None


def recipients_or_env(values: Iterable[str] | str | None) -> list[str]:
    """The recipients given, else those of ``$MAILVOICE_AGE_RECIPIENTS`` (public keys only)."""
    given = [values] if isinstance(values, str) else list(values or [])
    return given or [r for r in os.environ.get(ENV_RECIPIENTS, "").split(",") if r.strip()]


def parse_recipients(values: Iterable[str] | str | None) -> list[tuple[object, RecipientInfo]]:
    """age public keys (``age1…``), ssh public keys, or paths of recipients files (one key a line)."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    out: list[tuple[object, RecipientInfo]] = []
    for value in values:
        value = str(value).strip()
        if not value:
            continue
        if value.startswith(_SECRET_PREFIX) or "SECRET" in value.upper():
            raise MailvoiceError("a secret key was given where a public key (age1…) was expected")
        if value.startswith("age1") or value.startswith("ssh-"):
            out.append(_one_recipient(value))
            continue
        p = Path(value).expanduser()
        if not p.is_file():
            raise MailvoiceError(f"not an age public key nor a recipients file: {value[:20]}…")
        for line in p.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                if line.startswith(_SECRET_PREFIX):
                    raise MailvoiceError(f"{p}: holds a secret key; give the public key (age1…) instead")
                out.append(_one_recipient(line))
    return out


def _one_recipient(text: str) -> tuple[object, RecipientInfo]:
    try:
        if text.startswith("age1"):
            return pyrage.x25519.Recipient.from_str(text), RecipientInfo("x25519", text)
        return pyrage.ssh.Recipient.from_str(text), RecipientInfo("ssh", text)
    except Exception:
        raise MailvoiceError(f"malformed public key: {text[:16]}…") from None


def wrap_identity(passphrase: str):
    """A one-off identity for a passphrase backup: (recipient, info, wrapped key bytes)."""
    ident = pyrage.x25519.Identity.generate()
    pub = ident.to_public()
    wrapped = pyrage.passphrase.encrypt(f"{ident}\n".encode(), passphrase, armored=True)
    return pub, RecipientInfo("passphrase", str(pub)), wrapped


def unwrap_identity(wrapped: bytes, passphrase: str):
    try:
        text = pyrage.passphrase.decrypt(wrapped, passphrase).decode()
    except Exception:
        raise MailvoiceError("cannot decrypt backup: wrong passphrase") from None
    return _parse_identities(text, "wrapped key")
