"""An attacker's toolkit for vault tests: build a tar, seal it like a real backup, encrypt it to
a recipient, and write a manifest that agrees with it (or not)."""

from __future__ import annotations

import copy
import hashlib
import io
import json
import tarfile

import pyrage

from mailvoice.vault.manifest import sealed_view
from mailvoice.vault.tarstream import SEAL_MEMBER


def file_entry(path: str, data: bytes, part: str = "data") -> dict:
    return {"path": path, "part": part, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "mtime": 0.0}


def member(name: str, data: bytes = b"", **attrs) -> tuple[tarfile.TarInfo, bytes]:
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    for k, v in attrs.items():
        setattr(ti, k, v)
    return ti, data


def build_tar(members: list[tuple[tarfile.TarInfo, bytes]], seal: bytes | None = None,
              fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for ti, data in members:
            tar.addfile(ti, io.BytesIO(data) if ti.isreg() else None)
        if seal is not None:
            ti, data = member(SEAL_MEMBER, seal)
            tar.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def forge(base: dict, files: list[dict], members: list[tuple[tarfile.TarInfo, bytes]], *,
          recipient: str | None = None, seal: bool = True, **fields) -> tuple[bytes, dict]:
    """(archive bytes, manifest): ``base`` with ``files`` and ``fields`` replaced, a matching seal
    inside the tar (unless ``seal=False``), encrypted to ``recipient`` (age1…) if given, and the
    archive's size and sha256 filled in."""
    m = copy.deepcopy(base)
    m.update(fields)
    m["files"] = files
    m["totals"] = {"files": len(files), "bytes": sum(f["size"] for f in files)}
    plain = build_tar(members, json.dumps(sealed_view(m)).encode() if seal else None)
    body = pyrage.encrypt(plain, [pyrage.x25519.Recipient.from_str(recipient)]) if recipient else plain
    m["archive"] = {"name": m["archive"]["name"], "size": len(body), "sha256": hashlib.sha256(body).hexdigest()}
    return body, m
