"""The backup manifest: its schema (pydantic) and its seal.

``manifest.json`` sits in clear beside the archive, so anyone with write access to the storage
can rewrite it. Two defences:

* **schema**: every field is checked (types, ranges, names) before any of it is used, and a
  bad manifest is one ``error:`` line naming the field, never a traceback. The archive and key
  object names are fixed constants, so no manifest can make restore read another object
  (``../other-user/…``), and the files it lists cannot add up to more bytes than the archive
  holds (a sparse or forged size cannot make restore write more than was uploaded).
* **seal** (format ``mailvoice-vault/2``): the manifest, less the archive's own size and
  digest (unknown until the archive is written), is the LAST member of the age-encrypted
  archive. After the archive has decrypted and authenticated, the sealed copy must equal the
  one in clear, field for field; nothing is moved into the user's space before that.
"""

from __future__ import annotations

import json
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import MailvoiceError
from .tarstream import check_relpath

FORMAT = "mailvoice-vault/2"
LEGACY_FORMAT = "mailvoice-vault/1"  # before sealed manifests
PARTS = ("data", "checkpoints", "model", "configs", "eval")
ARCHIVE_ENC = "archive.tar.age"
ARCHIVE_PLAIN = "archive.tar"
KEY_OBJECT = "key.age"
MANIFEST = "manifest.json"
FOLDER_RE = re.compile(r"^(\d{8}T\d{6}\.\d{6}Z)-([0-9a-f]{12})$")
MAX_MANIFEST_BYTES = 64 * 2**20
MAX_FILES = 1_000_000
MAX_SIZE = 2**50  # 1 PiB: anything above is a forgery, not a checkpoint
_SHA256 = r"^[0-9a-f]{64}$"

Part = Literal["data", "checkpoints", "model", "configs", "eval"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class FileModel(_Strict):
    path: str = Field(max_length=4096)
    part: Part
    size: int = Field(ge=0, le=MAX_SIZE)
    sha256: str = Field(pattern=_SHA256)
    mtime: float = Field(ge=-(2**36), le=2**36, allow_inf_nan=False)  # os.utime must accept it

    @field_validator("path")
    @classmethod
    def _safe_path(cls, v: str) -> str:
        try:
            if check_relpath(v) != v:
                raise ValueError("not a normalised path")
        except MailvoiceError:
            raise ValueError("unsafe path (absolute, '..', or outside the user's folders)") from None
        return v


class ArchiveModel(_Strict):
    name: Literal["archive.tar.age", "archive.tar"]
    size: int = Field(ge=0, le=MAX_SIZE)
    sha256: str = Field(pattern=_SHA256)


class RecipientModel(_Strict):
    type: Literal["x25519", "ssh", "passphrase"]
    fingerprint: str = Field(pattern=r"^[0-9a-f]{16}$")
    public_key: str | None = Field(None, max_length=2048)  # format 1 only; format 2 publishes no key


class TotalsModel(_Strict):
    files: int = Field(ge=0, le=MAX_FILES)
    bytes: int = Field(ge=0, le=MAX_SIZE)


class ManifestModel(_Strict):
    format: Literal["mailvoice-vault/1", "mailvoice-vault/2"]
    user_id: str = Field(max_length=64)
    backup_id: str = Field(pattern=r"^[0-9a-f]{12}$")
    folder: str = Field(pattern=FOLDER_RE.pattern)
    created_at: str = Field(max_length=64)
    created_ts: float = Field(ge=0, le=2**36, allow_inf_nan=False)
    kind: Literal["full", "incremental"]
    parts: list[Part] = Field(min_length=1, max_length=len(PARTS))
    encrypted: bool
    archive: ArchiveModel
    key_object: Literal["key.age"] | None
    recipients: list[RecipientModel] = Field(max_length=1000)
    files: list[FileModel] = Field(max_length=MAX_FILES)
    totals: TotalsModel
    tool: dict[str, str] = Field(max_length=16)

    @model_validator(mode="after")
    def _consistent(self) -> ManifestModel:
        if self.archive.name != (ARCHIVE_ENC if self.encrypted else ARCHIVE_PLAIN):
            raise ValueError("archive name does not match 'encrypted'")
        if not self.encrypted and (self.key_object or self.recipients):
            raise ValueError("a plaintext backup has no key object and no recipients")
        if self.encrypted and not self.recipients:
            raise ValueError("an encrypted backup lists its recipients")
        if not self.folder.endswith("-" + self.backup_id):
            raise ValueError("folder does not end with the backup id")
        if len({f.path for f in self.files}) != len(self.files):
            raise ValueError("a file is listed twice")
        total = sum(f.size for f in self.files)
        if self.totals.files != len(self.files) or self.totals.bytes != total:
            raise ValueError("totals do not match the files listed")
        if total > self.archive.size:
            raise ValueError("the files listed hold more bytes than the archive (oversize or sparse forgery)")
        if any(f.part not in self.parts for f in self.files):
            raise ValueError("a file belongs to a part the backup does not hold")
        return self


def _clean(text: str, limit: int = 80) -> str:
    """Attacker-chosen text (a JSON key) made safe for a one-line message."""
    s = "".join(c if c.isprintable() else "?" for c in text)
    return s if len(s) <= limit else s[:limit] + "…"


def parse_manifest(raw: bytes, *, user_id: str, folder: str) -> dict:
    """The manifest as a dict, once it is valid and belongs to ``user_id``/``folder``;
    otherwise a ``MailvoiceError`` with one line naming the first bad field."""
    if len(raw) > MAX_MANIFEST_BYTES:
        raise MailvoiceError("invalid manifest: larger than any real backup's")
    try:
        # json.loads, then the model on that very dict: what is checked is what is used
        # (a JSON parser of its own could read duplicate keys differently)
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise MailvoiceError("invalid manifest: not JSON") from None
    try:
        model = ManifestModel.model_validate(data)
    except ValidationError as e:
        errs = e.errors(include_input=False, include_url=False)
        first = errs[0]
        loc = ".".join(_clean(str(x), 40) for x in first["loc"])
        more = f" (and {len(errs) - 1} more)" if len(errs) > 1 else ""
        msg = _clean(first["msg"].removeprefix("Value error, "), 160)
        raise MailvoiceError(f"invalid manifest: {f'{loc}: ' if loc else ''}{msg}{more}") from None
    if model.user_id != user_id or model.folder != folder:
        raise MailvoiceError("invalid manifest: it belongs to another user or folder")
    return data


def sealed_view(manifest: dict) -> dict:
    """What the archive seals: the manifest less the archive's own size and digest."""
    out = dict(manifest)
    out["archive"] = {"name": manifest["archive"]["name"]}
    return out


def check_seal(manifest: dict, sealed: bytes | None) -> None:
    """The sealed copy read from the decrypted archive must equal the manifest in clear."""
    if sealed is None:
        raise MailvoiceError("backup archive lacks its sealed manifest: the backup was forged or tampered with")
    try:
        inner = json.loads(sealed)
    except (ValueError, UnicodeDecodeError):
        raise MailvoiceError("backup archive's sealed manifest is unreadable: tampered with") from None
    if inner != sealed_view(manifest):
        raise MailvoiceError("backup manifest differs from the copy sealed inside the archive: tampered with (refused)")


def is_sealed(manifest: dict) -> bool:
    return manifest.get("format") == FORMAT
