"""One exception type for every expected failure.

The CLI turns a ``MailvoiceError`` into a single ``error: …`` line and a non-zero exit; anything
else is a bug and keeps its traceback. Messages must never contain email text or secrets.
"""

from __future__ import annotations


class MailvoiceError(Exception):
    """An expected failure with a one-line, user-facing message."""

    exit_code = 1

    def __init__(self, message: str, *, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class NotAvailableYet(MailvoiceError):
    """A flag or verb whose stage is not built yet."""

    exit_code = 2

    def __init__(self, what: str):
        super().__init__(f"{what} is not available yet in this version of mailvoice")


class GateFailed(MailvoiceError):
    """``evaluate``'s gate failed (exit 3). Carries the whole ``EvalResult`` (``.result``, with
    ``.gate``): every file was written, so a caller can still show or keep the numbers."""

    exit_code = 3

    def __init__(self, result):
        self.result = result
        super().__init__("evaluation gate failed: " + "; ".join(result.gate["failures"]))

    @property
    def gate(self) -> dict:
        return self.result.gate
