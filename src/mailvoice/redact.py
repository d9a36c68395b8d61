"""URLs with credentials, made safe to show or store (manifests, errors, logs).

Parsers disagree about a URL whose password holds an unencoded ``@``, ``/``, ``?``, ``#`` or a
space: libpq takes the userinfo up to the *first* ``@`` (so ``u:Secret99@x@db`` connects to host
``x@db`` and prints it in its error), ``urllib`` up to the last ``@`` but only within the
authority, which ends at the first ``/``. Redaction therefore keeps no parser's guess of where
the password ends: everything before the last ``@`` goes, and so do the query (``?password=…``)
and the fragment. What remains is the scheme, host, port and path, enough to say which source
it was. For connecting, libpq's own parser (``psycopg.conninfo``) says what libpq will use; see
``libpq_params``.
"""

from __future__ import annotations

import re

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$", re.S)


def redact_url(url: str) -> str:
    """``scheme://***@host:port/path`` (``scheme://host/path`` without credentials); anything
    that is not a ``scheme://`` URL is returned as it is (a path, ``mbox:…``, ``emailai:user``)."""
    m = _SCHEME.match(url.strip())
    if not m:
        return url
    scheme, rest = m.groups()
    had_user = "@" in rest
    if had_user:
        rest = rest.rsplit("@", 1)[1]
    rest = re.split(r"[?#\s]", rest, maxsplit=1)[0]
    return f"{scheme}://{'***@' if had_user else ''}{rest}"


def libpq_params(url: str) -> dict[str, str]:
    """The connection parameters libpq will take from ``url`` (host, user, password, …), by
    libpq's own parser through psycopg; {} when psycopg is missing or the URL does not parse."""
    try:
        from psycopg import conninfo  # an optional dependency: only EmailAI sources need it
    except ImportError:
        return {}
    try:
        return {k: str(v) for k, v in conninfo.conninfo_to_dict(url).items()}
    except Exception:  # noqa: BLE001 - a URL libpq rejects: the caller reports that without echoing it
        return {}
