"""The ``evaluate`` recipe: generations side by side, calibrated voice scores, leakage, a gate.

Files: ``evaluation-results.json`` is a list of ``{prompt, generated, base_generated, source,
stopped, base_stopped, p_user, base_p_user[, reference]}`` (so the guide's ``jq '.[] | {prompt,
generated}'`` works); the metrics go to ``metrics.json`` beside it; ``--report`` writes one
self-contained HTML page; the outcome (headline metrics + gate) is also kept in the adapter
folder as ``evaluation.json``, which ``deploy --require-eval`` checks.

Order matters for speed: every torch pass (generation, perplexity, canaries) runs before any
scikit-learn work, and the latter runs with BLAS held to one thread.
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from .. import samples
from ..errors import MailvoiceError
from ..workspace import read_jsonl, write_json
from .generate import (GenOptions, generate, load_prompts, load_tuned, reply_perplexity, resolve_adapter,
                       trained_on, val_rows)

EVALUATION_FILE = "evaluation.json"
CONTROL_ADDRESS = "marcus.bell@northgate-logistics.example"
GATE_EXIT_CODE = 3


@dataclass
class EvalResult:
    results_path: Path
    metrics_path: Path
    metrics: dict
    report_path: Path | None = None
    gate: dict | None = None


# ------------------------------------------------------------------------------------ control corpus
def bundled_control() -> Path | None:
    p = samples.locate(*samples.CONTRAST_MBOX)  # package data: found from a wheel too
    return p if p.is_file() else None


def load_control(control: Path | None, notice=print) -> tuple[list[dict], str]:
    """Other authors' emails as chat rows: a prepared dataset folder, or any mail source (it
    goes through the same prepare path). Default: the bundled contrast mailbox."""
    from ..dataset.build import DatasetOptions
    from ..dataset.prepare import prepare

    src = Path(control) if control else bundled_control()
    if src is None:
        return [], "none (no --control-data and no bundled contrast corpus)"
    if src.is_dir() and (src / "train_chat.jsonl").is_file():
        rows = read_jsonl(src / "train_chat.jsonl")
        if (src / "val_chat.jsonl").is_file():
            rows += read_jsonl(src / "val_chat.jsonl")
        return rows, str(src)
    if not src.exists():
        raise MailvoiceError(f"--control-data not found: {src}")
    cached = _control_cache(src)
    if cached and cached.is_file():
        return read_jsonl(cached), str(src)
    emails = [CONTROL_ADDRESS] if control is None else []
    with tempfile.TemporaryDirectory(prefix="mailvoice-control-") as tmp:
        prepare(sources=[str(src)], out_dir=Path(tmp), user_emails=emails,
                opts=DatasetOptions(min_emails=10), notice=lambda m: None)
        rows = read_jsonl(Path(tmp) / "train_chat.jsonl") + read_jsonl(Path(tmp) / "val_chat.jsonl")
    if cached:
        from ..workspace import make_private_dir, write_jsonl

        make_private_dir(cached.parent)
        write_jsonl(cached, rows)
    return rows, str(src)


def _control_cache(src: Path) -> Path | None:
    """Prepared control rows are cached per (file bytes, cleaning/scrubbing code): preparing
    them (PII scrubbing) takes far longer than reading them."""
    if not src.is_file():
        return None
    from .. import clean, dataset
    from ..models import cache_root

    h = hashlib.sha256(src.read_bytes())
    for pkg in (clean, dataset):
        for f in sorted(Path(pkg.__file__).parent.glob("*.py")):
            h.update(f.read_bytes())
    return cache_root() / "control" / h.hexdigest()[:20] / "control_chat.jsonl"


def split_control(rows: list[dict], heldout_every: int = 3) -> tuple[list[dict], list[dict]]:
    """Deterministic split: every third email (by id) is held out for the floor and the control
    perplexity; the rest train the classifier's 'other authors' side."""
    rows = sorted(rows, key=lambda r: r.get("id", ""))
    return ([r for i, r in enumerate(rows) if i % heldout_every],
            [r for i, r in enumerate(rows) if i % heldout_every == 0])


def reply(row: dict) -> str:
    return row["messages"][2]["content"]


# ------------------------------------------------------------------------------------ gate
def run_gate(metrics: dict, *, min_voice_score=None, min_novelty=None, max_canary_leaks=None) -> dict:
    checks = []
    if min_voice_score is not None:
        v = metrics["voice"]["voice_score"].get("tuned")
        if v is None:
            checks.append({"check": "voice score", "passed": False,
                           "message": f"voice score cannot be judged for --min-voice-score {min_voice_score} ({metrics['voice']['reason']})"})
        else:
            checks.append({"check": "voice score", "passed": v >= min_voice_score, "value": v,
                           "threshold": min_voice_score,
                           "message": f"voice score {v:.2f} {'≥' if v >= min_voice_score else '<'} --min-voice-score {min_voice_score}"})
    if min_novelty is not None:
        v = metrics["novelty"]["tuned"]["novelty"]
        if v is None:
            checks.append({"check": "novelty", "passed": False, "message": f"novelty cannot be judged for --min-novelty {min_novelty} (no 8-grams generated)"})
        else:
            checks.append({"check": "novelty", "passed": v >= min_novelty, "value": v, "threshold": min_novelty,
                           "message": f"novelty {v:.3f} {'≥' if v >= min_novelty else '<'} --min-novelty {min_novelty}"})
    if max_canary_leaks is not None:
        c = metrics["canaries"]
        n = c["extracted"] if c else 0
        note = "" if c else " (no canaries planted: prepare --plant-canaries N)"
        checks.append({"check": "canary leaks", "passed": n <= max_canary_leaks, "value": n,
                       "threshold": max_canary_leaks,
                       "message": f"{n} canaries extracted {'≤' if n <= max_canary_leaks else '>'} --max-canary-leaks {max_canary_leaks}{note}"})
    leaks = metrics["pii"]["leaked"]
    checks.append({"check": "PII", "passed": not leaks, "value": len(leaks),
                   "message": "no real PII from training came back" if not leaks
                   else f"{len(leaks)} real PII values from training came back in generations"})
    failures = [c["message"] for c in checks if not c["passed"]]
    return {"passed": not failures, "checks": checks, "failures": failures,
            "thresholds": {"min_voice_score": min_voice_score, "min_novelty": min_novelty,
                           "max_canary_leaks": max_canary_leaks}}


def adapter_digest(adapter: Path) -> str:
    h = hashlib.sha256()
    for name in ("adapter_model.safetensors", "adapter_model.bin", "adapter_config.json"):
        p = Path(adapter) / name
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def require_eval(model: Path) -> dict:
    """For ``deploy --require-eval``: the adapter's last evaluation, or a MailvoiceError (exit 3)."""
    adapter = resolve_adapter(model)
    p = adapter / EVALUATION_FILE
    if not p.is_file():
        raise MailvoiceError(f"no evaluation on record for {adapter}: run mailvoice evaluate --model {model} "
                             "(with --min-voice-score/--min-novelty/--max-canary-leaks) first", exit_code=GATE_EXIT_CODE)
    ev = json.loads(p.read_text())
    if ev.get("adapter_sha256") != adapter_digest(adapter):
        raise MailvoiceError(f"the adapter at {adapter} changed since its last evaluation: evaluate it again",
                             exit_code=GATE_EXIT_CODE)
    gate = ev.get("gate") or {}
    if not gate.get("passed"):
        raise MailvoiceError("refusing to deploy: its last evaluation failed: " + "; ".join(gate.get("failures") or ["?"]),
                             exit_code=GATE_EXIT_CODE)
    return ev


# ------------------------------------------------------------------------------------ the recipe
def _gap(base: float | None, tuned: float | None) -> float | None:
    return math.log(base / tuned) if base and tuned else None


def evaluate(
    *,
    model: Path,
    test_data: Path,
    output: Path,
    data_dir: Path | None = None,
    max_val_prompts: int = 8,
    opts: GenOptions | None = None,
    tick=None,
    control_data: Path | None = None,
    report: Path | None = None,
    min_voice_score: float | None = None,
    min_novelty: float | None = None,
    max_canary_leaks: int | None = None,
    canary_candidates: int = 100,
    max_control_rows: int = 30,
    novelty_flag: float = 0.95,
    classifier_margin: float = 0.3,
    fail_on_gate: bool = True,
    compare_rag: bool = True,
    max_emailai_prompts: int = 4,
    notice=print,
) -> EvalResult:
    from ..dataset.canaries import read_canaries
    from . import metrics as eval_metrics  # not `metrics`: evaluate() builds a dict of that name

    opts = opts or GenOptions()
    adapter = resolve_adapter(model)
    prompts = load_prompts(test_data)
    if data_dir is None:
        guess = adapter.parent.parent.parent / "data" if adapter.name == "final" else None
        data_dir = guess if guess and (guess / "val_chat.jsonl").is_file() else None
    val = val_rows(data_dir)
    train_rows = read_jsonl(Path(data_dir) / "train_chat.jsonl") if data_dir and (Path(data_dir) / "train_chat.jsonl").is_file() else []
    canaries = read_canaries(data_dir)
    control_rows, control_src = load_control(control_data, notice)
    control_train, control_held = split_control(control_rows)
    control_held = control_held[:max_control_rows]

    val_items = val[:max_val_prompts]
    items = [(p, "test-prompts", None) for p in prompts] + [(r["messages"][1]["content"], "val", reply(r)) for r in val_items]
    rag = rag_variants(val_items, adapter, data_dir) if compare_rag else None
    model_, tok = load_tuned(adapter)
    texts = [p for p, _, _ in items]
    tuned = generate(model_, tok, texts, opts, use_adapter=True, progress=tick)
    base = generate(model_, tok, texts, opts, use_adapter=False, progress=tick)
    tuned_texts = [t["text"] for t in tuned]
    base_texts = [b["text"] for b in base]
    e_rows = _emailai_rows(data_dir, max_emailai_prompts)
    e_gen = None
    if e_rows:  # EmailAI-shaped held-out prompts (prepare --emailai-format), with EmailAI's own system text
        EMAILAI_SYSTEM = e_rows[0]["messages"][0]["content"]  # the variant the rows were written in (fork|upstream)
        e_prompts = [r["messages"][1]["content"] for r in e_rows]
        e_gen = {side: [g["text"] for g in generate(model_, tok, e_prompts, opts, use_adapter=side == "tuned",
                                                     progress=tick, system=EMAILAI_SYSTEM)]
                 for side in ("tuned", "base")}
        e_gen["ppl"] = {side: reply_perplexity(model_, tok, e_rows, use_adapter=side == "tuned") for side in ("tuned", "base")}
    if rag:  # the val prompts the other way round (with ↔ without retrieved emails), tuned only
        other = [t["text"] for t in generate(model_, tok, rag["other_prompts"], opts, use_adapter=True, progress=tick)]
        mine = tuned_texts[len(prompts):]
        rag["texts"] = {"with": mine if rag["trained_with"] else other, "without": other if rag["trained_with"] else mine}

    ppl = {
        "user": {"base": reply_perplexity(model_, tok, val, use_adapter=False),
                 "tuned": reply_perplexity(model_, tok, val, use_adapter=True), "rows": len(val)},
        "control": {"base": reply_perplexity(model_, tok, control_held, use_adapter=False),
                    "tuned": reply_perplexity(model_, tok, control_held, use_adapter=True), "rows": len(control_held)},
    }
    ug, cg = _gap(ppl["user"]["base"], ppl["user"]["tuned"]), _gap(ppl["control"]["base"], ppl["control"]["tuned"])
    ppl["user"]["log_gain"] = ug
    ppl["control"]["log_gain"] = cg
    ppl["user_specific_gain"] = (ug - cg) if ug is not None and cg is not None else None

    canary = None
    if canaries:
        from .leakage import canary_report

        canary = canary_report(model_, tok, canaries, train_rows, candidates=canary_candidates,
                               generations=tuned_texts, seed=opts.seed)
    del model_

    # ---- scikit-learn and string metrics (after all torch work)
    user_train = [reply(r) for r in train_rows]
    user_held = [reply(r) for r in val]
    other_train = [reply(r) for r in control_train]
    other_held = [reply(r) for r in control_held]
    gens = {"base": base_texts, "tuned": tuned_texts}
    if rag:
        gens.update({f"rag_{k}": v for k, v in rag["texts"].items()})
    if e_gen:
        from ..dataset.emailai_format import parse_reply

        e_parsed = {side: [parse_reply(t) for t in e_gen[side]] for side in ("tuned", "base")}
        gens.update({f"emailai_{side}": [r if r is not None else t for r, t in zip(e_parsed[side], e_gen[side], strict=True)]
                     for side in ("tuned", "base")})
    clf = eval_metrics.voice_scores(user_train=user_train, other_train=other_train, user_heldout=user_held,
                         other_heldout=other_held, generations=gens, margin=classifier_margin, seed=opts.seed)
    emailai = None
    if e_gen:  # moved out of the voice section like rag's
        e_refs = [parse_reply(r["messages"][2]["content"]) or "" for r in e_rows]
        emailai = {"rows": len(e_rows), "trained_on": trained_on(adapter), "perplexity": e_gen["ppl"]}
        for side in ("tuned", "base"):
            key = f"emailai_{side}"
            emailai[side] = {"json_valid": sum(r is not None for r in e_parsed[side]) / len(e_rows),
                             "p_user": clf.scores.pop(key, None), "voice_score": clf.voice_score.pop(key, None),
                             "content": eval_metrics.content_overlap(gens[key], e_refs)}
            clf.per_text.pop(key, None)
    refs = [reply(r) for r in val_items]  # what the user really wrote to the val prompts
    grams = eval_metrics.ngram_set([m["content"] for r in train_rows for m in r["messages"][1:]], 8)  # novelty's reference
    rag_metrics = None
    if rag:  # moved out of the voice section: same classifier, its own report block
        rag_metrics = {**rag["meta"], "trained_with": rag["trained_with"], "rows": len(val_items)}
        for k, t in rag["texts"].items():
            key = f"rag_{k}"
            rag_metrics[k] = {"p_user": clf.scores.pop(key, None), "voice_score": clf.voice_score.pop(key, None),
                              "content": eval_metrics.content_overlap(t, refs), "novelty": eval_metrics.novelty(t, grams)["novelty"],
                              "words": round(sum(len(x.split()) for x in t) / max(len(t), 1), 1)}
            clf.per_text.pop(key, None)
    ref_docs = user_train + other_train
    delta = {name: eval_metrics.burrows_delta(ref_docs, user_train, t) for name, t in
             (("user_heldout", user_held), ("other_authors", other_held), ("base", base_texts), ("tuned", tuned_texts))}
    profile = eval_metrics.surface_features(user_train)
    features = {"profile": profile}
    for name, t in (("user_heldout", user_held), ("other_authors", other_held), ("base", base_texts), ("tuned", tuned_texts)):
        features[name] = eval_metrics.surface_features(t)
        features[name]["distance"] = eval_metrics.feature_distance(profile, features[name]) if profile and features[name] else None
    n_val = len(val_items)
    content = {"tuned": eval_metrics.content_overlap(tuned_texts[len(prompts):], refs) if n_val else None,
               "base": eval_metrics.content_overlap(base_texts[len(prompts):], refs) if n_val else None,
               "note": "content overlap with the real reply (ROUGE-L F1, chrF): what was said, not how"}
    nov = {"tuned": eval_metrics.novelty(tuned_texts, grams), "base": eval_metrics.novelty(base_texts, grams),
           "user_heldout": eval_metrics.novelty(user_held, grams), "flag_below": novelty_flag}
    nov["flagged"] = nov["tuned"]["novelty"] is not None and nov["tuned"]["novelty"] < novelty_flag
    records = Path(data_dir) / "records.jsonl" if data_dir else None
    train_pii: set[str] = set()
    if records and records.is_file():
        for rec in read_jsonl(records):
            train_pii |= eval_metrics.find_pii(rec.get("text") or "") | eval_metrics.find_pii(rec.get("html") or "")
    prompt_pii = set().union(*(eval_metrics.find_pii(p) for p in texts)) if texts else set()
    pii = {"known_values": len(train_pii), "leaked": eval_metrics.pii_leaks(tuned_texts + base_texts, train_pii, allowed=prompt_pii),
           "checked": bool(train_pii), "placeholders_in_generations": sum(g.count("<") for g in tuned_texts)}

    results = []
    for i, ((p, src, ref), t, b) in enumerate(zip(items, tuned, base, strict=True)):
        row = {"prompt": p, "generated": t["text"], "base_generated": b["text"], "source": src,
               "stopped": t["stopped"], "base_stopped": b["stopped"],
               "p_user": clf.per_text.get("tuned", [None] * len(items))[i],
               "base_p_user": clf.per_text.get("base", [None] * len(items))[i]}
        if ref is not None:
            row["reference"] = ref
        results.append(row)

    voice = {k: v for k, v in asdict(clf).items() if k != "per_text"}
    metrics = {
        "model": str(adapter),
        "evaluated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "prompts": len(items),
        "val_rows": len(val),
        "train_rows": len(train_rows),
        "control": {"source": control_src, "train": len(control_train), "heldout": len(control_held)},
        "stop_rate": {
            "tuned": sum(t["stopped"] for t in tuned) / max(len(tuned), 1),
            "base": sum(b["stopped"] for b in base) / max(len(base), 1),
        },
        "val_perplexity": {"base": ppl["user"]["base"], "tuned": ppl["user"]["tuned"]},
        "perplexity": ppl,
        "voice": voice,
        "delta": delta,
        "features": features,
        "content": content,
        "novelty": nov,
        "canaries": canary,
        "pii": pii,
        "rag": rag_metrics,
        "emailai": emailai,
        "generation": {"max_new_tokens": opts.max_new_tokens, "temperature": opts.temperature, "seed": opts.seed},
    }
    gate = run_gate(metrics, min_voice_score=min_voice_score, min_novelty=min_novelty, max_canary_leaks=max_canary_leaks)
    metrics["gate"] = gate
    output = Path(output)
    write_json(output, results)
    metrics_path = output.with_name("metrics.json")
    write_json(metrics_path, metrics)
    report_path = None
    if report:
        from .report import write_report

        report_path = write_report(Path(report), results, metrics)
    write_json(adapter / EVALUATION_FILE, {
        "evaluated": metrics["evaluated"],
        "adapter_sha256": adapter_digest(adapter),
        "results": str(output.resolve()),
        "metrics": str(metrics_path.resolve()),
        "report": str(report_path.resolve()) if report_path else None,
        "summary": headline(metrics),
        "gate": gate,
    })
    res = EvalResult(output, metrics_path, metrics, report_path, gate)
    if fail_on_gate and not gate["passed"]:
        err = MailvoiceError("evaluation gate failed: " + "; ".join(gate["failures"]), exit_code=GATE_EXIT_CODE)
        err.result = res
        raise err
    return res


def _emailai_rows(data_dir: Path | None, limit: int) -> list[dict]:
    p = Path(data_dir) / "val_emailai.jsonl" if data_dir else None
    return read_jsonl(p)[:limit] if limit and p and p.is_file() else []


def rag_variants(val_items: list[dict], adapter: Path, data_dir: Path | None) -> dict | None:
    """With a retrieval index (the adapter's, else the dataset's): every val prompt the other way
    round, so evaluate can compare the same model with and without the retrieved emails."""
    from ..chat import has_examples, prompt_fields, strip_examples, with_examples
    from ..rag.index import find_index, load_cached, query_text

    folder = find_index(adapter) or find_index(data_dir)
    if folder is None or not val_items:
        return None
    idx = load_cached(folder)
    turns = [r["messages"][1]["content"] for r in val_items]
    trained_with = any(has_examples(t) for t in turns)
    if trained_with:
        other = [strip_examples(t) for t in turns]
    else:
        queries = [query_text(**prompt_fields(t)) for t in turns]
        got = idx.examples_many(queries, [r.get("thread_id") for r in val_items])
        other = [with_examples(t, g) for t, g in zip(turns, got, strict=True)]
    return {"trained_with": trained_with, "other_prompts": other, "meta": idx.meta()}


def headline(metrics: dict) -> dict:
    v, p = metrics["voice"], metrics["perplexity"]
    return {
        "floor": v["floor"], "base": v["scores"].get("base"), "tuned": v["scores"].get("tuned"), "ceiling": v["ceiling"],
        "voice_score": v["voice_score"], "calibrated": v["calibrated"],
        "novelty": metrics["novelty"]["tuned"]["novelty"],
        "perplexity_user": [p["user"]["base"], p["user"]["tuned"]],
        "perplexity_control": [p["control"]["base"], p["control"]["tuned"]],
        "user_specific_gain": p["user_specific_gain"],
        "canaries_extracted": (metrics["canaries"] or {}).get("extracted"),
        "pii_leaked": len(metrics["pii"]["leaked"]),
    }
