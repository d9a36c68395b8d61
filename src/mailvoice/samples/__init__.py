"""The bundled samples as package data: Dana's and the contrast mailbox, the test prompts, the
training presets. They ship in the wheel, so ``demo`` and ``evaluate``'s calibration work
outside a checkout.

One copy in git: the files live where the guide and the docs name them (``data-samples/``,
``configs/``); the entries here are relative symlinks to them, which setuptools follows when it
builds the wheel (the wheel holds the files themselves). Read through ``importlib.resources``;
an installed package is a folder on disk, so the paths are plain ``Path``s (a zipped install is
not supported: ``sample`` then reports the file missing).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from ..errors import MailvoiceError

DANA_MBOX = ("mailboxes", "dana-sent.mbox")
CONTRAST_MBOX = ("mailboxes", "contrast-sent.mbox")
TEST_PROMPTS = ("test-prompts.json",)
CPU_CONFIG = ("configs", "lora-config-cpu.yaml")
GPU_8B_CONFIG = ("configs", "lora-config-8b.yaml")


def locate(*parts: str) -> Path:
    """Where the packaged sample ``parts`` is (it may not exist)."""
    return Path(str(files(__name__).joinpath(*parts)))


def sample(*parts: str) -> Path:
    """The packaged sample ``parts``; ``MailvoiceError`` when the install lacks it."""
    p = locate(*parts)
    if not p.is_file():
        raise MailvoiceError(f"bundled sample not found: {p} (a broken install: reinstall mailvoice)")
    return p
