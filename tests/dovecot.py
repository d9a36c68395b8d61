"""A private, throw-away Dovecot IMAP server for the IMAP source tests.

Installs nothing: it needs the ``dovecot`` binary (Debian/Ubuntu: ``apt-get install -y
dovecot-imapd``, which pulls in ``dovecot-core``) and skips the tests that use it when the
binary is missing. Everything lives in one temporary directory: the config, a passwd-file,
the Maildirs, the logs and Dovecot's runtime sockets. The server listens on 127.0.0.1 only,
on free ports; ``dovecot -F`` runs in the foreground as a child of the test process and is
stopped at the end of the session.

As root (CI containers) Dovecot runs its login/auth processes as its own ``dovecot`` /
``dovenull`` users and the mail as ``nobody``; as an ordinary user every process runs as
that user. Plaintext auth is allowed (loopback only). When ``openssl`` is available a
self-signed certificate is made so the server also offers STARTTLS and implicit TLS
(``imaps_port``); ``cafile`` is then the certificate to trust.

XOAUTH2 is served by Dovecot's ``oauth2`` passdb pointed at a tiny local token
introspection endpoint (a ``http.server`` thread here): a token is valid when it is in
``server.oauth_tokens`` (token -> user).

Each test gets its own fresh user (``server.new_user()``), so tests sharing the one
session-scoped server do not see each other's mail.
"""

from __future__ import annotations

import imaplib
import itertools
import json
import os
import pwd
import grp
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest

DOVECOT = shutil.which("dovecot") or next(
    (p for p in ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot") if os.access(p, os.X_OK)), None
)
OPENSSL = shutil.which("openssl")
POOL_SIZE = 64  # users made up front; more are added on demand (slower, see new_user)

SKIP_REASON = (
    "the dovecot binary is not installed (apt-get install -y dovecot-imapd); "
    "the IMAP tests need a real Dovecot"
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"dovecot exited with {proc.returncode}:\n{_tail(log)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.settimeout(2)
                if s.recv(200).startswith(b"* OK"):
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"dovecot did not answer on port {port} within {timeout}s:\n{_tail(log)}")


def _tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


class _Introspection(BaseHTTPRequestHandler):
    """RFC 7662-ish token introspection: POST token=… -> {"active": …, "username": …}."""

    tokens: dict[str, str] = {}

    def do_POST(self):  # noqa: N802 (http.server API)
        length = int(self.headers.get("Content-Length") or 0)
        form = parse_qs(self.rfile.read(length).decode())
        token = (form.get("token") or [""])[0]
        user = self.tokens.get(token)
        body = json.dumps({"active": True, "username": user} if user else {"active": False})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):  # keep pytest output clean
        pass


@dataclass
class DovecotServer:
    root: Path
    port: int
    imaps_port: int | None
    cafile: Path | None
    passwd_file: Path
    log_path: Path
    oauth_tokens: dict[str, str]
    host: str = "127.0.0.1"
    _proc: subprocess.Popen | None = None
    _pool: list[tuple[str, str]] = field(default_factory=list)
    _counter: itertools.count = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def new_user(self, password: str | None = None) -> tuple[str, str]:
        """A fresh (user, password) with empty folders.

        Users come from a pool written before Dovecot started: its passwd-file driver looks
        at the file at most once a second, so a line added now may not be seen at once. With
        an explicit ``password`` a line is appended and we wait out that second.
        """
        with self._lock:
            if password is None and self._pool:
                return self._pool.pop(0)
            n = next(self._counter)
            user = f"extra{n}"
            password = password or f"pw-x{n}-{os.urandom(6).hex()}"
            with self.passwd_file.open("a", encoding="utf-8") as f:
                f.write(f"{user}:{{PLAIN}}{password}::::::\n")
            time.sleep(1.2)
            return user, password

    def connect(self, user: str, password: str) -> imaplib.IMAP4:
        conn = imaplib.IMAP4(self.host, self.port, timeout=10)
        conn.login(user, password)
        return conn

    def append(self, user: str, password: str, folder: str, messages: list[bytes]) -> None:
        conn = self.connect(user, password)
        try:
            for raw in messages:
                typ, data = conn.append(_q(folder), None, None, raw)
                assert typ == "OK", (typ, data)
        finally:
            conn.logout()

    def stop(self) -> None:
        if self._proc and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()


def _q(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def make_message(
    n: int, *, sender: str = "me@example.com", subject: str | None = None, body: str | None = None
) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Me Myself <{sender}>"
    msg["To"] = "friend@example.org"
    msg["Subject"] = subject or f"message {n}"
    msg["Date"] = format_datetime(datetime(2024, 1, 1 + n % 28, 12, 0, tzinfo=timezone.utc))
    msg["Message-ID"] = make_msgid(idstring=f"m{n}", domain="example.com")
    msg.set_content(body or f"Hello, this is message number {n}.\n")
    return bytes(msg)


def _make_cert(root: Path) -> tuple[Path, Path] | None:
    if not OPENSSL:
        return None
    cert, key = root / "cert.pem", root / "key.pem"
    r = subprocess.run(
        [OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        capture_output=True,
    )
    if r.returncode != 0:
        return None
    os.chmod(key, 0o600)
    return cert, key


def start_dovecot() -> DovecotServer:
    assert DOVECOT
    root = Path(tempfile.mkdtemp(prefix="mailvoice-dovecot-"))
    # Dovecot's unprivileged processes must be able to traverse into the tree.
    os.chmod(root, 0o755)

    if os.geteuid() == 0:
        mail_user = "nobody"
        mail_group = grp.getgrgid(pwd.getpwnam("nobody").pw_gid).gr_name
        internal_user = "dovecot" if _user_exists("dovecot") else "nobody"
        login_user = "dovenull" if _user_exists("dovenull") else "nobody"
        internal_group = grp.getgrgid(pwd.getpwnam(internal_user).pw_gid).gr_name
    else:
        me = pwd.getpwuid(os.geteuid())
        mail_user = internal_user = login_user = me.pw_name
        mail_group = internal_group = grp.getgrgid(me.pw_gid).gr_name
    mail_pw = pwd.getpwnam(mail_user)

    mail_dir = root / "mail"
    mail_dir.mkdir()
    os.chown(mail_dir, mail_pw.pw_uid, mail_pw.pw_gid)
    passwd_file = root / "passwd"
    pool = [(f"user{i}", f"pw-{i}-{os.urandom(6).hex()}") for i in range(1, POOL_SIZE + 1)]
    passwd_file.write_text("".join(f"{u}:{{PLAIN}}{p}::::::\n" for u, p in pool))
    os.chmod(passwd_file, 0o644)
    log_path = root / "dovecot.log"

    port = free_port()
    tls = _make_cert(root)
    imaps_port = free_port() if tls else None

    oauth_tokens: dict[str, str] = {}
    handler = type("Introspection", (_Introspection,), {"tokens": oauth_tokens})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    oauth_conf = root / "oauth2.conf.ext"
    oauth_conf.write_text(
        "introspection_mode = post\n"
        f"introspection_url = http://127.0.0.1:{httpd.server_address[1]}/introspect\n"
        "username_attribute = username\n"
        "active_attribute = active\n"
        "active_value = true\n"
        "force_introspection = yes\n"
    )

    if tls:
        ssl_conf = f"ssl = yes\nssl_cert = <{tls[0]}\nssl_key = <{tls[1]}\n"
        imaps_listener = (
            f"  inet_listener imaps {{\n    address = 127.0.0.1\n    port = {imaps_port}\n"
            "    ssl = yes\n  }\n"
        )
    else:
        ssl_conf = "ssl = no\n"
        imaps_listener = "  inet_listener imaps {\n    port = 0\n  }\n"

    conf = root / "dovecot.conf"
    conf.write_text(f"""\
# Private test config written by tests/dovecot.py
base_dir = {root}/run
state_dir = {root}/state
instance_name = mailvoice-test-{port}
log_path = {log_path}
info_log_path = {log_path}
protocols = imap
listen = 127.0.0.1
{ssl_conf}
disable_plaintext_auth = no
auth_failure_delay = 0
auth_mechanisms = plain login xoauth2 oauthbearer
default_internal_user = {internal_user}
default_internal_group = {internal_group}
default_login_user = {login_user}
mail_uid = {mail_user}
mail_gid = {mail_group}
first_valid_uid = {mail_pw.pw_uid}
first_valid_gid = {mail_pw.pw_gid}
mail_location = maildir:{mail_dir}/%u
mail_home = {mail_dir}/%u

passdb {{
  driver = passwd-file
  args = {passwd_file}
  mechanisms = plain login
}}
passdb {{
  driver = oauth2
  args = {oauth_conf}
  mechanisms = xoauth2 oauthbearer
}}
userdb {{
  driver = static
  args = uid={mail_user} gid={mail_group}
}}

namespace inbox {{
  inbox = yes
  separator = /
  mailbox Sent {{
    special_use = \\Sent
    auto = subscribe
  }}
  mailbox Archive {{
    special_use = \\Archive
    auto = subscribe
  }}
  mailbox Drafts {{
    special_use = \\Drafts
    auto = subscribe
  }}
}}

service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
{imaps_listener}}}
service anvil {{
  chroot =
  # no auth penalty: the wrong-password tests would slow every later login by seconds
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service auth {{
  unix_listener auth-userdb {{
    mode = 0666
  }}
}}
""")
    proc = subprocess.Popen(
        [DOVECOT, "-F", "-c", str(conf)],
        stdin=subprocess.DEVNULL,
        stdout=log_path.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = DovecotServer(
        root=root,
        port=port,
        imaps_port=imaps_port,
        cafile=tls[0] if tls else None,
        passwd_file=passwd_file,
        log_path=log_path,
        oauth_tokens=oauth_tokens,
        _proc=proc,
        _pool=pool,
    )
    server._httpd = httpd  # type: ignore[attr-defined]
    try:
        _wait_for_port(port, proc, log_path)
        if imaps_port:
            # implicit TLS: the port is open once the plain one is; no banner without TLS
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", imaps_port), timeout=0.5).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
    except Exception:
        server.stop()
        httpd.shutdown()
        raise
    return server


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


@pytest.fixture(scope="session")
def dovecot():
    """A running private Dovecot for the whole test session (skips when not installed)."""
    if not DOVECOT:
        pytest.skip(SKIP_REASON)
    server = start_dovecot()
    try:
        yield server
    finally:
        server.stop()
        server._httpd.shutdown()  # type: ignore[attr-defined]
        if os.environ.get("MAILVOICE_KEEP_DOVECOT"):
            print(f"dovecot test tree kept at {server.root}")
        else:
            shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture
def imap_user(dovecot):
    """A fresh (user, password) on the session server with an empty Sent/Archive/INBOX."""
    return dovecot.new_user()
