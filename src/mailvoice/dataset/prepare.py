"""The ``prepare`` recipe: sources → records.jsonl → cleaned pairs → the guide's dataset files.

Incremental by construction: the records of earlier runs (``records.jsonl`` in the output
folder) are read again and merged with what the sources add (deduplicated by Message-ID), and
an IMAP source's UID state is moved into place only once the whole run has succeeded, so a
failed run never makes the next one skip mail.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.utils import parseaddr
from pathlib import Path

from ..artifacts import IMAP_STATE, RECORDS
from ..errors import MailvoiceError
from ..redact import redact_url
from ..sources import Source, SourceStats, open_source, read_records, read_sources, write_records
from ..sources.imap import open_imap
from ..sources.parse import header_problem
from .build import DatasetOptions, build_dataset


@dataclass
class PrepareResult:
    out_dir: Path
    metadata: dict
    user_emails: list[str]
    inferred_address: bool


def prepare(
    *,
    sources: Sequence[str],
    out_dir: Path,
    user_emails: Sequence[str] = (),
    db_url: str | None = None,
    user_id: str | None = None,
    opts: DatasetOptions | None = None,
    tokenizer=None,
    notice=print,
) -> PrepareResult:
    opts = opts or DatasetOptions()
    out_dir = Path(out_dir)
    staging = tempfile.mkdtemp(prefix="mailvoice-prepare-")  # 0700, holds the IMAP state until success
    try:
        return _prepare(sources, out_dir, user_emails, db_url, user_id, opts, tokenizer, notice, Path(staging))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _prepare(sources, out_dir, user_emails, db_url, user_id, opts, tokenizer, notice, staging) -> PrepareResult:
    state = out_dir / IMAP_STATE
    staged_state = staging / IMAP_STATE
    if state.is_file():
        shutil.copy2(state, staged_state)
    opened = [_open(s, staged_state) for s in sources]  # fails on a bad path before any work
    emails = [e.strip().lower() for e in user_emails if e.strip()]
    signatures: list[str] = []
    if db_url:
        from ..sources.emailai_db import open_emailai

        src = open_emailai(db_url, user_id=user_id)
        emails += [e for e in src.user_emails() if e not in emails]
        signatures = list(src.signatures().values())
        opened.append(src)
    if not opened:
        raise MailvoiceError("no source given: use --source PATH|URL (repeatable) or --db-url")
    inferred = False
    if not emails:
        emails = [_most_frequent_sender(opened)]
        inferred = True
        notice("no --user-email given: using the most frequent sender address in the sources as yours")
    previous = out_dir / RECORDS
    if previous.is_file():
        opened.insert(0, _previous_records_source(previous))
    stats = SourceStats()
    records = list(read_sources(opened, user_emails=emails, stats=stats))
    source_stats = stats.as_dict()
    if db_url:  # found vs read: Gmail's in:sent is the list, EmailMessage only a hint
        st = src.stats
        source_stats["emailai"] = {"found": st.listed, "read": st.fetched, "gone": st.missing,
                                   "listed_gmail": st.listed_gmail, "emailmessage_rows": st.emailmessage_rows,
                                   "only_in_emailmessage": st.hinted, "draftsendlog": st.draftsendlog}
        notice(f"EmailAI: found {st.listed} sent emails (Gmail in:sent {st.listed_gmail}; the app's EmailMessage "
               f"cache held {st.emailmessage_rows}), read {st.fetched}"
               + (f", {st.missing} gone from Gmail" if st.missing else ""))
    # build first: it raises (too few emails, …) before anything is written
    metadata = build_dataset(
        records,
        out_dir,
        opts,
        sources=[_redact(s) for s in sources] + (["emailai"] if db_url else []),
        source_stats=source_stats,
        tokenizer=tokenizer,
        known_signatures=signatures,
    )
    write_records(records, out_dir / RECORDS)
    if staged_state.is_file():
        os.replace(staged_state, state)
        os.chmod(state, 0o600)
    return PrepareResult(out_dir, metadata, emails, inferred)


def _open(spec: str, state_path: Path):
    if spec.startswith(("imap://", "imaps://")):
        return open_imap(spec, state_path=state_path)
    return open_source(spec)


def _previous_records_source(path: Path):
    class PreviousRecords(Source):
        """The records an earlier run kept: already the user's own, so they bypass the filters."""

        name = "previous-run"

        def iter_raw(self):
            return iter(())

        def records(self, *, user_emails, stats):
            for rec in read_records(path):
                stats.seen += 1
                yield rec

    return PreviousRecords()



def _most_frequent_sender(opened) -> str:
    """Scan From headers only; the user's own sent folder is overwhelmingly from them."""
    counts: Counter = Counter()
    for src in opened:
        for i, raw in enumerate(src.iter_raw()):
            if i >= 2000:
                break
            counts[_from_of(raw)] += 1
    counts.pop("", None)
    if not counts:
        raise MailvoiceError("could not tell which address is yours: pass --user-email ADDRESS")
    return counts.most_common(1)[0][0]


def _from_of(raw) -> str:
    if raw.error or not raw.data or header_problem(raw.data):  # the caps hold here too
        return ""
    head = BytesHeaderParser().parsebytes(raw.data)
    return parseaddr(str(head.get("From", "")))[1].lower()


def _redact(spec: str) -> str:
    """Drop credentials, query and fragment from URLs before they reach a manifest."""

    return redact_url(spec)
