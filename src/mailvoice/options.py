"""The CLI's closed choices, as enums typer turns into checked choices (a bad value is a usage error that
lists the valid ones, before any work starts).

Standard library only: `cli.py` imports this at startup, so no stage (the vault's pyrage and fsspec, rag's
numpy) is loaded for `--help`. Each enum's values are checked against the stage that owns the concept in
tests/test_cli_options.py. They are ``StrEnum``s, so a stage that takes a plain string takes them unchanged.
"""

from __future__ import annotations

from enum import StrEnum


class Decoding(StrEnum):
    """How evaluate generates (evaluate/generate.py GenOptions.decoding)."""

    served = "served"  # the Modelfile's sampling: what the user gets
    greedy = "greedy"


class Method(StrEnum):
    """How ``--bucket`` names a backup destination (the vault's own type, vault/destination.py)."""

    s3 = "s3"  # a bucket name or s3://bucket[/prefix]; a bare bucket gets the prefix "mailvoice"
    local = "local"  # a folder
    url = "url"  # any fsspec URL, as given


class DataFormat(StrEnum):
    """Which training files ``prepare`` writes."""

    alpaca = "alpaca"
    chat = "chat"
    both = "both"


class Instructions(StrEnum):
    """Who writes each training instruction: a heuristic, or an LLM from the scrubbed email."""

    heuristic = "heuristic"
    llm = "llm"


class EmailAIFormat(StrEnum):
    """EmailAI's drafting-prompt variants (dataset/emailai_format.py VARIANTS)."""

    fork = "fork"
    upstream = "upstream"


class Retriever(StrEnum):
    """Retrieval of past emails into prompts (rag/index.py RETRIEVERS)."""

    bm25 = "bm25"
    minilm = "minilm"


class Quant(StrEnum):
    """GGUF quantisations deploy can write (deploy/gguf.py QUANTS)."""

    q4_K_M = "q4_K_M"
    q8_0 = "q8_0"
    f16 = "f16"
    f32 = "f32"


class Target(StrEnum):
    """Where ``deploy`` puts the model."""

    ollama = "ollama"
    vllm = "vllm"


class UpstreamApi(StrEnum):
    """How voice models are called: Ollama's /api/chat or the OpenAI-compatible /v1."""

    ollama = "ollama"
    openai = "openai"
