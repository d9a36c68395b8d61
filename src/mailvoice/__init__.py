"""mailvoice: fine-tune an LLM on one person's sent mail, prove it sounds like them, serve it."""

__version__ = "0.1.0"
