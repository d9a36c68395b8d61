"""Model-side leakage checks: canary extraction and exposure (see ``dataset/canaries.py``).

For each planted canary we rebuild the context of one training reply it was planted in (the
same prompt, the reply up to the canary's prefix) and

- *extract*: greedy-decode a few tokens after the prefix; extracted = the secret comes back;
- *exposure*: score log P(secret | context) for the canary and for random secrets of the same
  format, rank the canary among them, ``exposure = log2(candidates + 1) − log2(rank)``.

Both run with the adapter on (tuned) and off (base, which never saw the canary: its exposure is
the chance level the tuned one is compared with).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from ..chat import SYSTEM_PROMPT, format_for
from ..dataset.canaries import Canary, candidate_secrets, exposure, max_exposure, rank_of
from .generate import selected_logits


def canary_context(canary: Canary, train_rows: Sequence[dict]) -> tuple[str, str] | None:
    """(user turn, reply text up to and including the prefix) from a row the canary is in."""
    by_id = {r.get("id"): r for r in train_rows}
    for rid in canary.rows:
        row = by_id.get(rid)
        if not row:
            continue
        reply = row["messages"][2]["content"]
        at = reply.find(canary.prefix)
        if at >= 0:
            return row["messages"][1]["content"], reply[: at + len(canary.prefix)]
    return None


def _secret_logprobs(model, tok, context_ids: list[int], secrets: Sequence[str], batch: int = 32) -> list[float]:
    import torch

    out: list[float] = []
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    for i in range(0, len(secrets), batch):
        chunk = secrets[i : i + batch]
        tails = [tok(" " + s, add_special_tokens=False)["input_ids"] for s in chunk]
        width = len(context_ids) + max(len(t) for t in tails)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        keep = torch.zeros((len(chunk), width), dtype=torch.bool)  # the positions that predict the secret
        start = len(context_ids)
        for j, t in enumerate(tails):
            seq = context_ids + t
            ids[j, : len(seq)] = torch.tensor(seq)
            mask[j, : len(seq)] = 1
            keep[j, start - 1 : start - 1 + len(t)] = True
        with torch.no_grad():
            logp = torch.log_softmax(selected_logits(model, ids, mask, keep).float(), dim=-1)
        at = 0  # rows of logp: row j's kept positions in order, then row j + 1's
        for t in tails:
            out.append(sum(float(logp[at + k, t[k]]) for k in range(len(t))))
            at += len(t)
    return out


def canary_report(model, tok, canaries: Sequence[Canary], train_rows: Sequence[dict], *,
                  candidates: int = 100, generations: Sequence[str] = (), seed: int = 0) -> dict:
    import torch

    fmt = format_for(tok)
    items = []
    for c in canaries:
        ctx = canary_context(c, train_rows)
        if ctx is None:
            items.append({"id": c.id, "error": "its training row is not in train_chat.jsonl"})
            continue
        user, reply_prefix = ctx
        text = fmt.render_prompt(user, SYSTEM_PROMPT) + reply_prefix
        context_ids = tok(text, add_special_tokens=False)["input_ids"]
        cands = candidate_secrets(c, candidates, seed)
        item = {"id": c.id, "format": c.to_dict()["format"], "candidates": len(cands),
                "max_exposure": round(max_exposure(len(cands)), 3)}
        for side, use in (("tuned", True), ("base", False)):
            ctx_mgr = contextlib.nullcontext() if use else model.disable_adapter()
            with ctx_mgr:
                scores = _secret_logprobs(model, tok, context_ids, [c.secret, *cands])
                with torch.no_grad():
                    gen = model.generate(
                        input_ids=torch.tensor([context_ids]),
                        attention_mask=torch.ones((1, len(context_ids)), dtype=torch.long),
                        max_new_tokens=len(tok(" " + c.secret, add_special_tokens=False)["input_ids"]) + 2,
                        do_sample=False,
                        pad_token_id=tok.pad_token_id,
                    )[0][len(context_ids):]
            completion = tok.decode(gen, skip_special_tokens=True)
            item[side] = {
                "rank": rank_of(scores[0], scores[1:]),
                "exposure": round(exposure(scores[0], scores[1:]), 3),
                "extracted": completion.strip().startswith(c.secret),
            }
        item["in_generations"] = any(c.secret in g for g in generations)
        items.append(item)
    ok = [i for i in items if "tuned" in i]
    return {
        "planted": len(canaries),
        "extracted": sum(1 for i in ok if i["tuned"]["extracted"] or i["in_generations"]),
        "base_extracted": sum(1 for i in ok if i["base"]["extracted"]),
        "mean_exposure": {
            "tuned": round(sum(i["tuned"]["exposure"] for i in ok) / len(ok), 3) if ok else None,
            "base": round(sum(i["base"]["exposure"] for i in ok) / len(ok), 3) if ok else None,
        },
        "canaries": items,
    }
