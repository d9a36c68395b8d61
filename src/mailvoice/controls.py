"""Control characters and terminal escape sequences that arrive in mail.

Mail is written by strangers: an ESC sequence in a body recolours the terminal that prints it,
OSC 52 writes the clipboard, OSC 8 hides a link, and all of them are noise in training rows.
``strip_controls`` removes them from text (pure, for parsing and cleaning); ``escape_controls``
makes any string safe to print, showing what was there instead of obeying it.

Hand-written regexes on purpose: the sequences are fixed by ECMA-48 (CSI, OSC/DCS/SOS/PM/APC
strings, two-byte escapes) and the libraries that strip them either handle CSI only or are
unmaintained; every pattern below is linear (no nested quantifiers).
"""

from __future__ import annotations

import re

# ECMA-48 sequences, 7-bit (ESC-introduced) and 8-bit (C1) forms, removed whole so that their
# parameters ("[31m", "]52;c;…") do not stay behind as text.
_SEQUENCES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"  # CSI … final byte
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?"  # OSC/DCS/SOS/PM/APC … BEL or ST
    r"|\x1b[ -/]*[0-~]?"  # any other escape (nF, Fp, Fe, Fs) or a lone ESC
)
# C0 except TAB and LF, DEL, and C1 (CR is turned into LF first); and the Unicode bidi embeddings,
# overrides and isolates (U+202A–U+202E, U+2066–U+2069): "Trojan Source" (CVE-2021-42574) shows
# text in an order other than the one it is read in. LRM/RLM/ALM marks stay (right-to-left mail).
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_CR = re.compile(r"\r\n?")
_ANY = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\r\u202a-\u202e\u2066-\u2069]")  # one scan: most text has none
# Everything a terminal might act on, for escaping on output (TAB and LF print as they are).
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def strip_controls(text: str) -> str:
    """Text without escape sequences or control characters; CR/CRLF become LF, TAB and LF stay."""
    if not text or not _ANY.search(text):
        return text
    if "\r" in text:
        text = _CR.sub("\n", text)
    if "\x1b" in text or _has_c1_introducer(text):
        text = _SEQUENCES.sub("", text)
    return _CONTROLS.sub("", text)


def _has_c1_introducer(text: str) -> bool:
    return any(c in text for c in "\x90\x98\x9b\x9d\x9e\x9f")


def has_controls(text: str) -> bool:
    """True if ``strip_controls`` would change anything other than line endings."""
    return bool(_CONTROLS.search(text.replace("\r", "")))


def escape_controls(text: str) -> str:
    """``text`` safe to print on a terminal: each control character shown as ``\\xNN``/``\\uNNNN``."""
    return _UNPRINTABLE.sub(lambda m: repr(m.group())[1:-1], text)
