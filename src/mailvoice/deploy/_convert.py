"""Run one of llama.cpp's converters from its tree: ``python -m mailvoice.deploy._convert TREE SCRIPT ARGS…``.

The converter runs unchanged with its own ``gguf-py``, with one addition: a BPE tokenizer whose
pre-tokenizer is exactly GPT-2's (``ByteLevel`` with the GPT-2 regex, as in the tiny test model)
but whose vocabulary hash is not in llama.cpp's table is written as ``tokenizer.ggml.pre=gpt-2``
(the pre-tokenizer llama.cpp implements for that regex) instead of failing. Any other unknown
tokenizer still fails, as upstream does. The tests prove the result by comparing token ids.
"""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path


def _is_plain_gpt2_bytelevel(tokenizer) -> bool:
    try:
        spec = json.loads(tokenizer.backend_tokenizer.to_str())
    except Exception:
        return False
    pre = spec.get("pre_tokenizer") or {}
    return pre.get("type") == "ByteLevel" and pre.get("use_regex", True) and not pre.get("add_prefix_space", False)


def main(argv: list[str]) -> None:
    tree, script, *args = argv
    tree_p = Path(tree)
    sys.path[:0] = [str(tree_p / "gguf-py"), str(tree_p)]
    import conversion.base as base  # the tree's own package

    original = base.TextModel.get_vocab_base_pre

    def get_vocab_base_pre(self, tokenizer):
        try:
            return original(self, tokenizer)
        except NotImplementedError:
            if _is_plain_gpt2_bytelevel(tokenizer):
                return "gpt-2"
            raise

    base.TextModel.get_vocab_base_pre = get_vocab_base_pre
    sys.argv = [str(tree_p / script), *args]
    runpy.run_path(str(tree_p / script), run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
