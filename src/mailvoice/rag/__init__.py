"""Retrieval of the user's own past emails into the prompt (RAG, as in the Panza paper).

Built by ``prepare --rag bm25|minilm`` from the training replies only, used for every training
and validation prompt, copied into the trained adapter (``<adapter>/retrieval/``) so that
evaluate, the gateway, ``mailvoice write`` and ``mcp`` retrieve from the same emails with the
same settings the model learned with. See ``index.py`` for the files and docs/rag.md.
"""

from .index import RETRIEVERS, Index, RagOptions, query_text

__all__ = ["RETRIEVERS", "Index", "RagOptions", "query_text"]
