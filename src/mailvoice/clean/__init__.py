"""Cleaning: exactly the author's own words of one sent email (quotes, forwards, signatures,
device footers and disclaimers cut; the sign-off kept, it is voice).

The package's face. The engine is ``extract.py``, the patterns it matches ``_rules.py``, HTML
to text ``_html.py``; docs/cleaning.md maps every cleaning rule of the pipeline, these and the
others, and the order they run in.
"""

from .extract import Extraction, Zone, extract_author_text, html_to_text, learn_signatures

__all__ = ["Zone", "Extraction", "extract_author_text", "html_to_text", "learn_signatures"]
