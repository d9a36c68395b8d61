"""EmailAI token encryption: Python against Node's own crypto (the code EmailAI runs)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from mailvoice.errors import MailvoiceError
from mailvoice.sources.tokencrypt import (
    WRONG_SECRET,
    decrypt_token,
    derive_key,
    encrypt_token,
    secret_and_salt_from_env,
)

NODE_SCRIPT = Path(__file__).parent / "fixtures" / "node_token_vectors.js"
SECRET = "emailai-encrypt-secret-for-tests"
SALT = "emailai-salt"
PLAINTEXTS = [
    "ya29.a0AfB_byC-test-access-token_0123456789",
    "1//0gRefreshTokenExample-abcdefghijklmnopqrstuvwxyz",
    "ünïcödé ✓ token",
    "x",
    "",
]

node = shutil.which("node")
def needs_node(f):
    return pytest.mark.services(pytest.mark.skipif(node is None, reason="node is not installed")(f))


def run_node(mode: str, payload: dict) -> dict:
    out = subprocess.run([node, str(NODE_SCRIPT), mode], input=json.dumps(payload),
                         capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout)


def test_roundtrip():
    for p in PLAINTEXTS[:-1]:
        tok = encrypt_token(p, SECRET, SALT)
        assert len(bytes.fromhex(tok)) == 32 + len(p.encode())
        assert decrypt_token(tok, SECRET, SALT) == p
        assert decrypt_token("v1:" + tok, SECRET, SALT) == p
    assert decrypt_token(None, SECRET, SALT) is None
    assert decrypt_token("", SECRET, SALT) is None


def test_fresh_iv_each_time():
    assert encrypt_token("same", SECRET, SALT) != encrypt_token("same", SECRET, SALT)


@needs_node
def test_python_decrypts_node_vectors():
    res = run_node("encrypt", {"secret": SECRET, "salt": SALT, "plaintexts": PLAINTEXTS})
    assert res["key_hex"] == derive_key(SECRET, SALT).hex()
    for v in res["vectors"]:
        assert decrypt_token(v["token"], SECRET, SALT) == v["plaintext"]


@needs_node
def test_node_decrypts_python_tokens():
    toks = [encrypt_token(p, SECRET, SALT) for p in PLAINTEXTS]
    res = run_node("decrypt", {"secret": SECRET, "salt": SALT, "tokens": toks})
    assert res["plaintexts"] == PLAINTEXTS


@needs_node
def test_wrong_secret_on_node_token():
    tok = run_node("encrypt", {"secret": SECRET, "salt": SALT, "plaintexts": ["ya29.secret"]})["vectors"][0]["token"]
    for secret, salt in ((SECRET + "x", SALT), (SECRET, SALT + "x")):
        with pytest.raises(MailvoiceError) as ei:
            decrypt_token(tok, secret, salt)
        assert str(ei.value) == WRONG_SECRET
        assert "ya29" not in str(ei.value) and tok not in str(ei.value)


def test_tampered_ciphertext_is_refused():
    tok = bytearray(bytes.fromhex(encrypt_token("ya29.abcdef", SECRET, SALT)))
    tok[-1] ^= 1
    with pytest.raises(MailvoiceError, match="wrong GOOGLE_ENCRYPT_SECRET/SALT"):
        decrypt_token(tok.hex(), SECRET, SALT)


def test_plaintext_token_passes_through_like_upstream():
    assert decrypt_token("ya29.plain-token", SECRET, SALT) == "ya29.plain-token"


def test_secret_from_env():
    assert secret_and_salt_from_env({"GOOGLE_ENCRYPT_SECRET": "a", "GOOGLE_ENCRYPT_SALT": "b"}) == ("a", "b")
    assert secret_and_salt_from_env({"EMAIL_ENCRYPT_SECRET": "c", "EMAIL_ENCRYPT_SALT": "d"}) == ("c", "d")
    with pytest.raises(MailvoiceError, match="GOOGLE_ENCRYPT_SECRET"):
        secret_and_salt_from_env({"GOOGLE_ENCRYPT_SECRET": "a"})
