"""The ``evaluate`` recipe: generations side by side, calibrated voice scores, leakage, a gate.

Files: ``evaluation-results.json`` is a list of ``{prompt, generated, base_generated, source,
stopped, base_stopped, p_user, base_p_user[, reference]}`` (so the guide's ``jq '.[] | {prompt,
generated}'`` works); the metrics go to ``metrics.json`` beside it; ``--report`` writes one
self-contained HTML page; the outcome (headline metrics + gate) is also kept in the adapter
folder as ``evaluation.json``, which ``deploy --require-eval`` checks.

Order matters for speed: every torch pass (generation, perplexity, canaries) runs before any
scikit-learn work, and the latter runs with BLAS held to one thread. Generation and perplexity
run in batches (``generate.generate``). Every phase reports progress through ``step`` (the CLI
passes ``ui.step``): control-set preparation, generation, perplexity, leakage, classifiers.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import math
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .. import samples
from ..artifacts import EVAL_METRICS, FINAL, RECORDS, TRAIN_CHAT, VAL_CHAT, VAL_EMAILAI, Adapter, find_retrieval
from ..chat import prompt_fields
from ..dataset.canaries import read_canaries
from ..dataset.emailai_format import parse_reply
from ..dataset.notes import note_coverage
from ..errors import GateFailed, MailvoiceError
from ..workspace import read_jsonl, write_json
from . import metrics
from .generate import GenOptions, generate, load_prompts, load_tuned, reply_perplexity, val_rows
from .leakage import canary_report
from .report import write_report
from .rerank import Reranker

CONTROL_ADDRESS = "marcus.bell@northgate-logistics.example"


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
    if src.is_dir() and (src / TRAIN_CHAT).is_file():
        rows = read_jsonl(src / TRAIN_CHAT)
        if (src / VAL_CHAT).is_file():
            rows += read_jsonl(src / VAL_CHAT)
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
        rows = read_jsonl(Path(tmp) / TRAIN_CHAT) + read_jsonl(Path(tmp) / VAL_CHAT)
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
def _threshold_check(name: str, value, threshold, option: str, *, at_most: bool, why_none: str, digits: int = 2) -> dict:
    if value is None:
        return {"check": name, "passed": False, "message": f"{name} cannot be judged for {option} {threshold} ({why_none})"}
    ok = value <= threshold if at_most else value >= threshold
    sign = ("≤" if ok else ">") if at_most else ("≥" if ok else "<")
    return {"check": name, "passed": ok, "value": value, "threshold": threshold,
            "message": f"{name} {value:.{digits}f} {sign} {option} {threshold}"}


def run_gate(metrics: dict, *, min_voice_score=None, min_novelty=None, max_canary_leaks=None,
             max_habit_ratio=None, max_discriminator_auc=None, min_stop_rate=None, min_user_gain=None,
             min_note_coverage=None) -> dict:
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
    if max_habit_ratio is not None:
        checks.append(_threshold_check("habit-distance ratio", (metrics["features"].get("habit_ratio") or {}).get("tuned"),
                                       max_habit_ratio, "--max-habit-ratio", at_most=True,
                                       why_none="no held-out emails or no generations to compare habits"))
    if max_discriminator_auc is not None:
        d = (metrics.get("discriminator") or {}).get("tuned") or {}
        checks.append(_threshold_check("real-vs-generated AUC", d.get("auc"), max_discriminator_auc,
                                       "--max-discriminator-auc", at_most=True, why_none=d.get("reason", "not measured")))
    if min_stop_rate is not None:
        checks.append(_threshold_check("stop rate", metrics["stop_rate"]["tuned"], min_stop_rate, "--min-stop-rate",
                                       at_most=False, why_none="no generations"))
    if min_user_gain is not None:
        checks.append(_threshold_check("user-specific perplexity gain", metrics["perplexity"].get("user_specific_gain"),
                                       min_user_gain, "--min-user-gain", at_most=False, digits=3,
                                       why_none="needs held-out user emails and a control set"))
    if min_note_coverage is not None:
        checks.append(_threshold_check("note coverage", ((metrics.get("notes") or {}).get("tuned") or {}).get("coverage"),
                                       min_note_coverage, "--min-note-coverage", at_most=False,
                                       why_none="no prompt carries notes"))
    leaks = metrics["pii"]["leaked"]
    checks.append({"check": "PII", "passed": not leaks, "value": len(leaks),
                   "message": "no real PII from training came back" if not leaks
                   else f"{len(leaks)} real PII values from training came back in generations"})
    failures = [c["message"] for c in checks if not c["passed"]]
    return {"passed": not failures, "checks": checks, "failures": failures,
            "thresholds": {"min_voice_score": min_voice_score, "min_novelty": min_novelty,
                           "max_canary_leaks": max_canary_leaks, "max_habit_ratio": max_habit_ratio,
                           "max_discriminator_auc": max_discriminator_auc, "min_stop_rate": min_stop_rate,
                           "min_user_gain": min_user_gain, "min_note_coverage": min_note_coverage}}


# ------------------------------------------------------------------------------------ the recipe
@contextlib.contextmanager
def quiet_step(description: str, total: int | None = None):
    """``ui.step``'s shape with no output: the default for library callers and tests."""
    yield lambda n=1, total=None, completed=None: None


@dataclass
class EvalOptions:
    """Everything ``evaluate`` can be told besides the model, the prompts and the output path.

    The ``min_*``/``max_*`` fields are the gate's thresholds (``None``: not checked); the CLI's
    ``--min-voice-score`` and friends map onto them one to one."""

    data_dir: Path | None = None  # default: the run's data/ folder when the adapter is <run>/final
    control_data: Path | None = None  # default: the bundled contrast mailbox
    report: Path | None = None
    gen: GenOptions = field(default_factory=GenOptions.decoding)  # the served sampling (generate.py)
    max_val_prompts: int = 16
    batch_size: int = 16
    candidates: int = 1  # best-of-N for the tuned model (evaluate.rerank), as `write --candidates N` drafts
    canary_candidates: int = 100
    max_control_rows: int = 30
    novelty_flag: float = 0.95
    classifier_margin: float = 0.3
    compare_rag: bool = True
    max_emailai_prompts: int = 4
    fail_on_gate: bool = True
    min_voice_score: float | None = None
    min_novelty: float | None = None
    max_canary_leaks: int | None = None
    max_habit_ratio: float | None = None
    max_discriminator_auc: float | None = None
    min_stop_rate: float | None = None
    min_user_gain: float | None = None
    min_note_coverage: float | None = None

    def thresholds(self) -> dict:
        """The gate's keyword arguments (``run_gate``)."""
        return {k: getattr(self, k) for k in GATE_THRESHOLDS}


GATE_THRESHOLDS = ("min_voice_score", "min_novelty", "max_canary_leaks", "max_habit_ratio", "max_discriminator_auc",
                   "min_stop_rate", "min_user_gain", "min_note_coverage")


@dataclass
class EvalInputs:
    """What is evaluated: the prompts (test prompts, then val), the user's and others' mail."""

    adapter: Path
    data_dir: Path | None
    prompts: list[str]
    val: list[dict]
    val_items: list[dict]
    train_rows: list[dict]
    canaries: list
    control_src: str
    control_train: list[dict]
    control_held: list[dict]
    items: list[tuple[str, str, str | None]]  # (prompt, source, the user's real reply or None)
    rag: dict | None
    emailai_rows: list[dict]

    @property
    def texts(self) -> list[str]:
        return [p for p, _, _ in self.items]


@dataclass
class Generations:
    """Every text generated, in ``EvalInputs.items`` order; the EmailAI and retrieval extras."""

    tuned: list[dict]
    base: list[dict]
    emailai: dict | None = None  # side → texts, with EmailAI's own system text
    rag_other: list[str] | None = None  # the val prompts the other way round, tuned only
    timing: dict = field(default_factory=dict)  # seconds per side, best-of-N's choices

    @property
    def tuned_texts(self) -> list[str]:
        return [t["text"] for t in self.tuned]

    @property
    def base_texts(self) -> list[str]:
        return [b["text"] for b in self.base]


def own_stop_rate(tok, replies: list[str], max_new_tokens: int) -> float | None:
    """The share of ``replies`` (with their end token) that fit in ``max_new_tokens``."""
    if not replies:
        return None
    return sum(len(tok(r, add_special_tokens=False)["input_ids"]) + 1 <= max_new_tokens for r in replies) / len(replies)


def evaluate(model: Path, test_data: Path, output: Path, opts: EvalOptions | None = None, *,
             step=None, notice=print) -> EvalResult:
    """Evaluate one adapter: torch passes first (generation, perplexity, canaries), then the
    scikit-learn and string metrics, then the gate. Raises ``GateFailed`` (exit 3) carrying the
    result when a threshold fails and ``opts.fail_on_gate``; every file is written either way."""
    opts = opts or EvalOptions()
    step = step or quiet_step
    inp = gather_inputs(model, test_data, opts, step, notice)
    if opts.candidates > 1 and not (inp.train_rows and inp.control_train):
        raise MailvoiceError("--candidates needs the user's training replies (--data with train_chat.jsonl) "
                             "and a control set to fit the reranker")
    with step("loading the model"):
        model_, tok = load_tuned(inp.adapter)
    gens = generate_all(model_, tok, inp, opts, step)
    ppl, emailai_ppl = perplexity_metrics(model_, tok, inp, step)
    canary = canary_metrics(model_, tok, inp, gens, opts, step)
    del model_
    # ---- scikit-learn and string metrics (after all torch work)
    with step("classifiers: voice score, real-vs-generated, habits, novelty", total=4) as advance:
        clf, emailai_parsed = voice_metrics(inp, gens, opts)
        advance()
        emailai = emailai_metrics(inp, gens, emailai_parsed, emailai_ppl, clf)
        refs = [reply(r) for r in inp.val_items]  # what the user really wrote to the val prompts
        grams = metrics.ngram_set([m["content"] for r in inp.train_rows for m in r["messages"][1:]], 8)  # novelty's reference
        delta, features = habit_metrics(inp, gens)
        advance()
        rag_metrics = rag_block(inp, clf, refs, grams, features, opts.gen.seed)
        discriminator = discriminator_metrics(inp, gens, refs, opts.gen.seed)
        advance()
        content = content_metrics(inp, gens, refs)
        nov = novelty_metrics(inp, gens, grams, opts.novelty_flag)
        notes = note_metrics(inp, gens)
        advance()
    pii = leakage_metrics(inp, gens, step)

    out = {
        "model": str(inp.adapter),
        "evaluated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "prompts": len(inp.items),
        "val_rows": len(inp.val),
        "train_rows": len(inp.train_rows),
        "control": {"source": inp.control_src, "train": len(inp.control_train), "heldout": len(inp.control_held)},
        "stop_rate": {
            "tuned": sum(t["stopped"] for t in gens.tuned) / max(len(gens.tuned), 1),
            "base": sum(b["stopped"] for b in gens.base) / max(len(gens.base), 1),
            # the user's own: the share of their held-out replies that end within max_new_tokens
            # (a long writer cannot be matched by a model that always stops early)
            "user_heldout": own_stop_rate(tok, refs, opts.gen.max_new_tokens),
        },
        "val_perplexity": {"base": ppl["user"]["base"], "tuned": ppl["user"]["tuned"]},
        "perplexity": ppl,
        "voice": {k: v for k, v in asdict(clf).items() if k != "per_text"},
        "discriminator": discriminator,
        "delta": delta,
        "features": features,
        "content": content,
        "notes": notes,
        "novelty": nov,
        "canaries": canary,
        "pii": pii,
        "rag": rag_metrics,
        "emailai": emailai,
        "timing": gens.timing,
        "generation": {"max_new_tokens": opts.gen.max_new_tokens, "temperature": opts.gen.temperature,
                       "top_p": opts.gen.top_p, "repetition_penalty": opts.gen.repetition_penalty,
                       "seed": opts.gen.seed, "candidates": opts.candidates},
    }
    out["gate"] = gate = run_gate(out, **opts.thresholds())
    res = write_outputs(inp, result_rows(inp, gens, clf), out, Path(output), opts.report)
    if opts.fail_on_gate and not gate["passed"]:
        raise GateFailed(res)
    return res


# ------------------------------------------------------------------------------------ the steps
def gather_inputs(model: Path, test_data: Path, opts: EvalOptions, step, notice) -> EvalInputs:
    """The adapter, the prompts, the user's train/val rows, the canaries and the control set."""
    adapter = Adapter.open(model).path
    prompts = load_prompts(test_data)
    data_dir = opts.data_dir
    if data_dir is None:
        guess = adapter.parent.parent.parent / "data" if adapter.name == FINAL else None
        data_dir = guess if guess and (guess / VAL_CHAT).is_file() else None
    val = val_rows(data_dir)
    train_file = Path(data_dir) / TRAIN_CHAT if data_dir else None
    train_rows = read_jsonl(train_file) if train_file and train_file.is_file() else []
    canaries = read_canaries(data_dir)
    with step("preparing the control set (other authors' mail)"):
        control_rows, control_src = load_control(opts.control_data, notice)
    control_train, control_held = split_control(control_rows)
    val_items = val[:opts.max_val_prompts]
    items = [(p, "test-prompts", None) for p in prompts] + [(r["messages"][1]["content"], "val", reply(r)) for r in val_items]
    return EvalInputs(
        adapter=adapter, data_dir=data_dir, prompts=prompts, val=val, val_items=val_items, train_rows=train_rows,
        canaries=canaries, control_src=control_src, control_train=control_train,
        control_held=control_held[:opts.max_control_rows], items=items,
        rag=rag_variants(val_items, adapter, data_dir) if opts.compare_rag else None,
        emailai_rows=_emailai_rows(data_dir, opts.max_emailai_prompts))


def generate_all(model_, tok, inp: EvalInputs, opts: EvalOptions, step) -> Generations:
    """Tuned and base replies to every prompt, in batches; the EmailAI rows; the retrieval twins.
    With ``opts.candidates`` N > 1 the tuned model samples N drafts per prompt (candidate j of
    prompt i is row j·k + i, so candidate 0 is the N = 1 draft) and keeps the best (``best_of``)."""
    texts, e_rows, rag, n = inp.texts, inp.emailai_rows, inp.rag, max(opts.candidates, 1)
    n_gen = (n + 1) * len(texts) + 2 * len(e_rows) + (len(rag["other_prompts"]) if rag else 0)
    gen = opts.gen
    # prompts cut as training cut its rows: prompt + reply within the training length
    cut = Adapter(inp.adapter).max_length or 2048
    gen_kw = dict(batch_size=opts.batch_size, max_prompt_tokens=max(cut - gen.max_new_tokens, cut // 2))
    what = f"tuned best of {n} and base" if n > 1 else "tuned and base"
    with step(f"generating {n_gen} emails ({what}, {opts.batch_size} at a time)", total=n_gen) as tick:
        t = time.perf_counter()
        tuned = generate(model_, tok, texts * n, gen, use_adapter=True, progress=tick, **gen_kw)
        t_tuned, t = time.perf_counter() - t, time.perf_counter()
        gens = Generations(tuned=tuned, base=generate(model_, tok, texts, gen, use_adapter=False, progress=tick, **gen_kw))
        gens.timing = {"tuned_s": round(t_tuned, 2), "base_s": round(time.perf_counter() - t, 2), "prompts": len(texts),
                       "candidates": n}
        if e_rows:  # EmailAI-shaped held-out prompts (prepare --emailai-format), with EmailAI's own system text
            system = e_rows[0]["messages"][0]["content"]  # the variant the rows were written in (fork|upstream)
            e_prompts = [r["messages"][1]["content"] for r in e_rows]
            gens.emailai = {side: [g["text"] for g in generate(model_, tok, e_prompts, gen, use_adapter=side == "tuned",
                                                              progress=tick, system=system, **gen_kw)]
                            for side in ("tuned", "base")}
        if rag:  # the val prompts the other way round (with ↔ without retrieved emails), tuned only
            t = time.perf_counter()
            gens.rag_other = [g["text"] for g in generate(model_, tok, rag["other_prompts"], gen, use_adapter=True,
                                                          progress=tick, **gen_kw)]
            # its latency next to the same prompts' tuned drafts the other way (per prompt, this run)
            gens.timing.update(rag_other_s=round(time.perf_counter() - t, 2), rag_other_prompts=len(rag["other_prompts"]))
    first = gens.tuned_texts  # the N = 1 drafts: the retrieval comparison stays like for like
    if n > 1:
        with step(f"best of {n}: reranking each prompt's drafts"):
            best_of(inp, gens, n)
    if rag:
        mine, other = first[len(inp.prompts):len(texts)], gens.rag_other
        rag["texts"] = {"with": mine if rag["trained_with"] else other, "without": other if rag["trained_with"] else mine}
    return gens


def best_of(inp: EvalInputs, gens: Generations, n: int) -> None:
    """Keep each prompt's best of its ``n`` tuned drafts (``rerank.Reranker``, fitted on the user's
    training replies against the control set's training half, never on the held-out mail the
    measures use); record how often the choice was not the first draft and what it cost."""
    t = time.perf_counter()
    k = len(inp.texts)
    rr = Reranker([reply(r) for r in inp.train_rows], [reply(r) for r in inp.control_train], seed=0)
    chosen = []
    for i, prompt in enumerate(inp.texts):
        cands = [gens.tuned[j * k + i] for j in range(n)]
        best, _ = rr.best([c["text"] for c in cands], prompt_fields(prompt)["notes"] or None, [c["stopped"] for c in cands])
        chosen.append(best)
    gens.tuned = [gens.tuned[j * k + i] for i, j in enumerate(chosen)]
    gens.timing.update(rerank_s=round(time.perf_counter() - t, 2),
                       not_first_share=round(sum(j != 0 for j in chosen) / max(k, 1), 3))


def _gap(base: float | None, tuned: float | None) -> float | None:
    return math.log(base / tuned) if base and tuned else None


def perplexity_metrics(model_, tok, inp: EvalInputs, step) -> tuple[dict, dict | None]:
    """Reply perplexity of the user's and other authors' held-out mail (and the EmailAI rows),
    tuned and base; the user-specific gain is the user's log gain minus the others'."""
    val, held, e_rows = inp.val, inp.control_held, inp.emailai_rows
    emailai_ppl = None
    cut = Adapter(inp.adapter).max_length or 2048  # training's row length (2048 for an adapter from elsewhere)

    n_ppl = 2 * (len(val) + len(held) + len(e_rows))
    with step(f"perplexity of {n_ppl // 2} held-out emails (tuned and base)", total=n_ppl) as tick:
        score = functools.partial(reply_perplexity, model_, tok, max_len=cut, progress=tick)
        ppl = {
            "user": {"base": score(val, use_adapter=False), "tuned": score(val, use_adapter=True), "rows": len(val)},
            "control": {"base": score(held, use_adapter=False), "tuned": score(held, use_adapter=True),
                        "rows": len(held)},
        }
        if e_rows:
            emailai_ppl = {side: score(e_rows, use_adapter=side == "tuned") for side in ("tuned", "base")}
    ug, cg = _gap(ppl["user"]["base"], ppl["user"]["tuned"]), _gap(ppl["control"]["base"], ppl["control"]["tuned"])
    ppl["user"]["log_gain"] = ug
    ppl["control"]["log_gain"] = cg
    ppl["user_specific_gain"] = (ug - cg) if ug is not None and cg is not None else None
    return ppl, emailai_ppl


def canary_metrics(model_, tok, inp: EvalInputs, gens: Generations, opts: EvalOptions, step) -> dict | None:
    """Planted canaries (prepare --plant-canaries): exposure and extraction."""
    if not inp.canaries:
        return None
    with step(f"leakage: {len(inp.canaries)} planted canaries (exposure over {opts.canary_candidates} candidates)"):
        return canary_report(model_, tok, inp.canaries, inp.train_rows, candidates=opts.canary_candidates,
                             generations=gens.tuned_texts, seed=opts.gen.seed)


def voice_metrics(inp: EvalInputs, gens: Generations, opts: EvalOptions):
    """The calibrated voice classifier over every generated set (the EmailAI and retrieval sets
    included; their blocks take their scores out again). Returns it and the parsed EmailAI replies."""
    texts = {"base": gens.base_texts, "tuned": gens.tuned_texts}
    if inp.rag:
        texts.update({f"rag_{k}": v for k, v in inp.rag["texts"].items()})
    parsed = None
    if gens.emailai:
        parsed = {side: [parse_reply(t) for t in gens.emailai[side]] for side in ("tuned", "base")}
        texts.update({f"emailai_{side}": [r if r is not None else t for r, t in zip(parsed[side], gens.emailai[side], strict=True)]
                      for side in ("tuned", "base")})
    clf = metrics.voice_scores(user_train=[reply(r) for r in inp.train_rows],
                               other_train=[reply(r) for r in inp.control_train],
                               user_heldout=[reply(r) for r in inp.val],
                               other_heldout=[reply(r) for r in inp.control_held],
                               generations=texts, margin=opts.classifier_margin, seed=opts.gen.seed)
    return clf, parsed


def emailai_metrics(inp: EvalInputs, gens: Generations, parsed: dict | None, ppl: dict | None, clf) -> dict | None:
    """The EmailAI-shaped prompts: valid JSON, voice, content (moved out of the voice block)."""
    if not gens.emailai:
        return None
    e_rows = inp.emailai_rows
    e_refs = [parse_reply(r["messages"][2]["content"]) or "" for r in e_rows]
    emailai = {"rows": len(e_rows), "trained_on": Adapter(inp.adapter).train_file, "perplexity": ppl}
    for side in ("tuned", "base"):
        key = f"emailai_{side}"
        replies = [r if r is not None else t for r, t in zip(parsed[side], gens.emailai[side], strict=True)]
        emailai[side] = {"json_valid": sum(r is not None for r in parsed[side]) / len(e_rows),
                         "p_user": clf.scores.pop(key, None), "voice_score": clf.voice_score.pop(key, None),
                         "content": metrics.content_overlap(replies, e_refs)}
        clf.per_text.pop(key, None)
    return emailai


def rag_block(inp: EvalInputs, clf, refs: list[str], grams, features: dict, seed: int) -> dict | None:
    """The same model with and without the retrieved emails (moved out of the voice block), with
    the measures that catch a caricature or a copy: habit ratio, real-vs-generated AUC, novelty,
    note coverage, content overlap."""
    if not inp.rag:
        return None
    rag = inp.rag
    out = {**rag["meta"], "trained_with": rag["trained_with"], "rows": len(inp.val_items)}
    profile, own = features["profile"], (features.get("user_heldout") or {}).get("distance")
    notes = [prompt_fields(r["messages"][1]["content"])["notes"] for r in inp.val_items]
    for k, t in rag["texts"].items():
        key = f"rag_{k}"
        out[k] = {"p_user": clf.scores.pop(key, None), "voice_score": clf.voice_score.pop(key, None),
                  "content": metrics.content_overlap(t, refs), "novelty": metrics.novelty(t, grams)["novelty"],
                  "habit_ratio": metrics.habit_ratio(_habit_distance(profile, metrics.surface_features(t)), own),
                  "auc": metrics.discriminator_auc(refs, t, seed=seed)["auc"],
                  "note_coverage": note_coverage(notes, t)["coverage"],
                  "words": round(sum(len(x.split()) for x in t) / max(len(t), 1), 1)}
        clf.per_text.pop(key, None)
    return out


def discriminator_metrics(inp: EvalInputs, gens: Generations, refs: list[str], seed: int) -> dict:
    n = len(inp.prompts)
    out = {side: metrics.discriminator_auc(refs, texts[n:], seed=seed)
           for side, texts in (("tuned", gens.tuned_texts), ("base", gens.base_texts))}
    out["note"] = ("a classifier trained to tell your real held-out replies from the model's replies to the "
                   "same prompts: cross-validated AUC, 0.5 = indistinguishable")
    return out


def _habit_distance(profile: dict, feats: dict) -> float | None:
    return metrics.feature_distance(profile, feats) if profile and feats else None


def habit_metrics(inp: EvalInputs, gens: Generations) -> tuple[dict, dict]:
    """Burrows' Delta and surface habits against the user's profile; the habit ratio."""
    user_train = [reply(r) for r in inp.train_rows]
    sets = (("user_heldout", [reply(r) for r in inp.val]), ("other_authors", [reply(r) for r in inp.control_held]),
            ("base", gens.base_texts), ("tuned", gens.tuned_texts))
    ref_docs = user_train + [reply(r) for r in inp.control_train]
    delta = {name: metrics.burrows_delta(ref_docs, user_train, t) for name, t in sets}
    profile = metrics.surface_features(user_train)
    features = {"profile": profile}
    for name, t in sets:
        features[name] = metrics.surface_features(t)
        features[name]["distance"] = _habit_distance(profile, features[name])
    own = (features["user_heldout"] or {}).get("distance")
    features["habit_ratio"] = {name: metrics.habit_ratio((features[name] or {}).get("distance"), own)
                               for name in ("other_authors", "base", "tuned")}
    return delta, features


def content_metrics(inp: EvalInputs, gens: Generations, refs: list[str]) -> dict:
    n, n_val = len(inp.prompts), len(inp.val_items)
    return {"tuned": metrics.content_overlap(gens.tuned_texts[n:], refs) if n_val else None,
            "base": metrics.content_overlap(gens.base_texts[n:], refs) if n_val else None,
            "note": "content overlap with the real reply (ROUGE-L F1, chrF): what was said, not how"}


def novelty_metrics(inp: EvalInputs, gens: Generations, grams, flag_below: float) -> dict:
    """Share of new 8-grams (not in the training mail): low means copying."""
    nov = {"tuned": metrics.novelty(gens.tuned_texts, grams), "base": metrics.novelty(gens.base_texts, grams),
           "user_heldout": metrics.novelty([reply(r) for r in inp.val], grams), "flag_below": flag_below}
    nov["flagged"] = nov["tuned"]["novelty"] is not None and nov["tuned"]["novelty"] < flag_below
    return nov


def note_metrics(inp: EvalInputs, gens: Generations) -> dict:
    prompt_notes = [prompt_fields(t)["notes"] for t in inp.texts]
    notes = {side: note_coverage(prompt_notes, g) for side, g in (("tuned", gens.tuned_texts), ("base", gens.base_texts))}
    notes["note"] = "share of the prompts' note items the email expresses (half of an item's content words or more)"
    return notes


def leakage_metrics(inp: EvalInputs, gens: Generations, step) -> dict:
    """Real PII of the source emails that comes back in generations (unless the prompt had it)."""
    records = Path(inp.data_dir) / RECORDS if inp.data_dir else None
    train_pii: set[str] = set()
    if records and records.is_file():
        recs = read_jsonl(records)
        with step(f"leakage: real PII of {len(recs)} source emails", total=len(recs)) as tick:
            for rec in recs:
                train_pii |= metrics.find_pii(rec.get("text") or "") | metrics.find_pii(rec.get("html") or "")
                tick()
    texts, tuned = inp.texts, gens.tuned_texts
    prompt_pii = set().union(*(metrics.find_pii(p) for p in texts)) if texts else set()
    return {"known_values": len(train_pii),
            "leaked": metrics.pii_leaks(tuned + gens.base_texts, train_pii, allowed=prompt_pii),
            "checked": bool(train_pii), "placeholders_in_generations": sum(g.count("<") for g in tuned)}


def result_rows(inp: EvalInputs, gens: Generations, clf) -> list[dict]:
    """``evaluation-results.json``: one row per prompt, tuned and base side by side."""
    n = len(inp.items)
    results = []
    for i, ((p, src, ref), t, b) in enumerate(zip(inp.items, gens.tuned, gens.base, strict=True)):
        row = {"prompt": p, "generated": t["text"], "base_generated": b["text"], "source": src,
               "stopped": t["stopped"], "base_stopped": b["stopped"],
               "p_user": clf.per_text.get("tuned", [None] * n)[i],
               "base_p_user": clf.per_text.get("base", [None] * n)[i]}
        if ref is not None:
            row["reference"] = ref
        results.append(row)
    return results


def write_outputs(inp: EvalInputs, results: list[dict], out: dict, output: Path, report: Path | None) -> EvalResult:
    """The results, ``metrics.json`` beside them, the report, and the adapter's ``evaluation.json``."""
    write_json(output, results)
    metrics_path = output.with_name(EVAL_METRICS)
    write_json(metrics_path, out)
    report_path = write_report(Path(report), results, out) if report else None
    Adapter(inp.adapter).write_evaluation({
        "evaluated": out["evaluated"],
        "results": str(output.resolve()),
        "metrics": str(metrics_path.resolve()),
        "report": str(report_path.resolve()) if report_path else None,
        "summary": headline(out),
        "gate": out["gate"],
    })
    return EvalResult(output, metrics_path, out, report_path, out["gate"])


def _emailai_rows(data_dir: Path | None, limit: int) -> list[dict]:
    p = Path(data_dir) / VAL_EMAILAI if data_dir else None
    return read_jsonl(p)[:limit] if limit and p and p.is_file() else []


def rag_variants(val_items: list[dict], adapter: Path, data_dir: Path | None) -> dict | None:
    """With a retrieval index (the adapter's, else the dataset's): every val prompt the other way
    round, so evaluate can compare the same model with and without the retrieved emails."""
    from ..chat import has_examples, prompt_fields, strip_examples, with_examples
    from ..rag.index import load_cached, query_text

    folder = find_retrieval(adapter) or find_retrieval(data_dir)
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
        "voice_score": v["voice_score"], "calibrated": v["calibrated"], "above_ceiling": v.get("above_ceiling"),
        "habit_ratio": metrics["features"].get("habit_ratio"),
        "discriminator_auc": {k: (metrics.get("discriminator") or {}).get(k, {}).get("auc") for k in ("tuned", "base")},
        "stop_rate": metrics["stop_rate"],
        "note_coverage": {k: ((metrics.get("notes") or {}).get(k) or {}).get("coverage") for k in ("tuned", "base")},
        "content_rouge_l": {k: (metrics["content"].get(k) or {}).get("rouge_l") for k in ("tuned", "base")},
        "novelty": metrics["novelty"]["tuned"]["novelty"],
        "perplexity_user": [p["user"]["base"], p["user"]["tuned"]],
        "perplexity_control": [p["control"]["base"], p["control"]["tuned"]],
        "user_specific_gain": p["user_specific_gain"],
        "canaries_extracted": (metrics["canaries"] or {}).get("extracted"),
        "pii_leaked": len(metrics["pii"]["leaked"]),
    }
