"""Records → cleaned author text → instruction pairs → the guide's train/val files.

Output folder (``--output``), every file written atomically:

- ``records.jsonl``: the normalised source records (see ``sources/record.py``), for inspection.
- ``train_alpaca.jsonl`` / ``val_alpaca.jsonl``: ``{id, thread_id, date, instruction, input, output}``.
- ``train_chat.jsonl`` / ``val_chat.jsonl``: ``{id, thread_id, date, messages: [system, user, assistant]}``;
  the user turn is ``chat.instruction_for(...)`` so training and serving ask the same way.
- with ``--instructions llm`` (``instructions.py``): an LLM-written instruction replaces the
  ``task_line`` in both; raw answers cached in ``instructions-cache.jsonl``.
- with ``--emailai-format``: ``train_emailai.jsonl`` / ``val_emailai.jsonl``, replies only, shaped
  like EmailAI's drafting prompt (``emailai_format.py``), same split.
- ``clean-profile.json``: the signatures and protected names cleaning used (``clean_profile.py``), so
  ``mailvoice explain --user-id`` shows one email as it is trained on.
- ``dataset_alpaca.json``: ``{records: [...alpaca, split], metadata: {...}}``, the manifest:
  counts at every stage, drops by reason, PII counts by type, length statistics, date range,
  split method, sources, tool version.
"""

from __future__ import annotations

import hashlib
import random
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .. import __version__
from ..artifacts import (CANARIES, CLEAN_PROFILE, MANIFEST, RETRIEVAL, TRAIN_ALPACA, TRAIN_CHAT, TRAIN_EMAILAI,
                         VAL_ALPACA, VAL_CHAT, VAL_EMAILAI)
from ..chat import SYSTEM_PROMPT, examples_block, instruction_for, recipient_name, task_line
from ..errors import MailvoiceError
from ..sources.record import MailRecord
from ..workspace import make_private_dir, write_json, write_jsonl
from .filters import NearDuplicateIndex, is_one_liner, language_ok, one_liner_cap
from .clean_profile import CleanProfile, clean_record, learn_profile, training_view, write_profile
from .pii import scrub_subject
from .notes import derive_notes, gets_notes, notes_text

FORMATS = ("alpaca", "chat", "both")


@dataclass
class DatasetOptions:
    min_emails: int = 50
    min_words: int = 3
    max_words: int = 600
    one_liner_share: float = 0.1  # "Thanks!"-style replies kept only up to this share
    val_fraction: float = 0.1
    seed: int = 42
    format: str = "both"
    keep_urls: bool = False
    languages: tuple[str, ...] | None = None  # e.g. ("en", "de"); None keeps every language
    near_dup_threshold: float = 0.8  # Jaccard on word 5-gram shingles (MinHash LSH); 1.0 = exact only
    plant_canaries: int = 0  # canaries.py: unique secrets planted in train replies, for evaluate
    canary_repeats: int = 4
    instructions: str = "heuristic"  # or "llm": instructions.py writes each instruction (reverse instructions)
    llm_url: str | None = None  # an OpenAI- or Ollama-compatible endpoint for --instructions llm
    llm_model: str | None = None  # its model name, or alone: a local transformers model
    # also write train_emailai.jsonl / val_emailai.jsonl (emailai_format.py): "fork" (EmailAI as
    # shipped; True means this) or "upstream" (inbox-zero's newer prompt); False/None: not written
    emailai_format: bool | str | None = False
    rag: str | None = None  # "bm25" or "minilm": k of the user's past emails in every prompt (mailvoice.rag)
    rag_k: int = 3
    rag_max_chars: int = 600
    note_share: float = 0.7  # notes.py: share of prompts carrying notes derived from the reply (0 = none)


@dataclass
class Example:
    id: str
    thread_id: str
    date: str | None
    instruction: str
    input: str
    output: str
    recipient: str = ""
    subject: str = ""
    llm_instruction: str | None = None  # instructions.py: replaces task_line in both formats
    retrieved: list[str] = field(default_factory=list)  # rag: past emails shown in the prompt
    notes: str | None = None  # notes.py: content cues derived from the reply, as a user would type them

    def user_turn(self) -> str:
        """The chat user turn: ``instruction_for``, its task line replaced by a generated instruction
        (which then stands for the notes too: it names the email's points)."""
        ctx = self.input or None
        text = instruction_for(subject=self.subject, recipient=self.recipient, replying_to=ctx, notes=self.notes,
                               examples=self.retrieved)
        if not self.llm_instruction:
            return text
        head = task_line(subject=self.subject, recipient=self.recipient, is_reply=bool(ctx), notes=self.notes)
        return self.llm_instruction + text[len(head):]  # keeps instruction_for's quoted-context layout

    def alpaca(self) -> dict:
        return {
            "id": self.id,
            "thread_id": self.thread_id,
            "date": self.date,
            "instruction": self.instruction + ("\n\n" + examples_block(self.retrieved) if self.retrieved else ""),
            "input": self.input,
            "output": self.output,
        }

    def chat(self) -> dict:
        user = self.user_turn()
        return {
            "id": self.id,
            "thread_id": self.thread_id,
            "date": self.date,
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": user},
                {"role": "assistant", "content": self.output},
            ],
        }


@dataclass
class BuildStats:
    stages: dict = field(default_factory=dict)
    dropped: Counter = field(default_factory=Counter)
    pii: Counter = field(default_factory=Counter)
    removed_zones: Counter = field(default_factory=Counter)
    profile: CleanProfile = field(default_factory=CleanProfile)  # what cleaning learned (clean_profile.py)


def _norm_key(text: str) -> str:
    return re.sub(r"\W+", " ", text.lower()).strip()


def make_examples(records: Iterable[MailRecord], opts: DatasetOptions, stats: BuildStats,
                  known_signatures: Sequence[str] = ()) -> list[Example]:
    """Clean each record and turn it into an instruction pair. Pure apart from the counters.

    ``known_signatures`` are signatures the user stored elsewhere (EmailAI's
    ``EmailAccount.signature``, HTML or text); they are removed like learned ones. What was learned
    (signatures, protected names) is left in ``stats.profile`` for ``build_dataset`` to persist."""
    records = list(records)
    profile = learn_profile(records, known_signatures, keep_urls=opts.keep_urls)
    stats.profile = profile
    stats.stages["records"] = len(records)
    examples: list[Example] = []
    dedupe = NearDuplicateIndex(opts.near_dup_threshold)
    protect = profile.protected_names
    one_liners: list[Example] = []
    for rec in records:
        ex = clean_record(rec, profile)
        for z in ex.removed:
            stats.removed_zones[z.kind] += 1
        words = len(ex.text.split())
        if words < opts.min_words:
            stats.dropped["too_short"] += 1
            continue
        if words > opts.max_words:
            stats.dropped["too_long"] += 1
            continue
        if not language_ok(ex.text, opts.languages):
            stats.dropped["language"] += 1
            continue
        if not dedupe.add(rec.message_id, ex.text):
            stats.dropped[dedupe.last_reason or "duplicate_text"] += 1  # duplicate_text / near_duplicate
            continue
        view = training_view(rec, profile, ex)  # scrubbed only once the filters have kept it
        stats.pii.update(view.pii)
        recipient = recipient_name(rec.to[0]) if rec.to else ""
        subj = scrub_subject(rec.subject or "", keep_urls=opts.keep_urls, protect=protect)  # subjects carry PII too
        stats.pii.update(subj.counts)
        subject = subj.text
        eid = hashlib.sha256(rec.message_id.encode()).hexdigest()[:16]
        notes = notes_text(derive_notes(view.text)) if gets_notes(eid, opts.note_share) else ""
        instr = task_line(subject=subject, recipient=recipient, is_reply=bool(view.quoted), notes=notes or None)
        example = Example(
            id=eid,
            thread_id=rec.thread_id,
            date=rec.date,
            instruction=instr,
            input=view.quoted or "",
            output=view.text,
            recipient=recipient,
            subject=subject,
            notes=notes or None,
        )
        if is_one_liner(ex.text):
            one_liners.append(example)
        else:
            examples.append(example)
    cap = one_liner_cap(len(examples), opts.one_liner_share)
    if len(one_liners) > cap:
        stats.dropped["one_liner_cap"] += len(one_liners) - cap
    examples.extend(one_liners[:cap])
    stats.stages["examples"] = len(examples)
    return examples


def split_by_thread(examples: Sequence[Example], val_fraction: float, seed: int) -> tuple[list, list]:
    """Whole threads go to one side; the newest threads form val, so val is 'the future'."""
    threads: dict[str, list[Example]] = defaultdict(list)
    for ex in examples:
        threads[ex.thread_id].append(ex)
    rng = random.Random(seed)
    order = list(threads)
    rng.shuffle(order)  # tie-break for equal dates, deterministic per seed
    order.sort(key=lambda t: max((e.date or "") for e in threads[t]))
    n_val = max(1, round(len(examples) * val_fraction)) if len(examples) >= 10 else 0
    val: list[Example] = []
    while order and len(val) < n_val:
        val.extend(threads[order.pop()])
    train = [e for t in order for e in threads[t]]
    return train, val


def build_dataset(
    records: Iterable[MailRecord],
    out_dir: Path,
    opts: DatasetOptions,
    *,
    sources: Sequence[str] = (),
    source_stats: dict | None = None,
    tokenizer=None,
    known_signatures: Sequence[str] = (),
) -> dict:
    if opts.format not in FORMATS:
        raise MailvoiceError(f"unknown --format {opts.format!r}: use alpaca, chat or both")
    stats = BuildStats()
    examples = make_examples(records, opts, stats, known_signatures)
    if len(examples) < opts.min_emails:
        drops = (source_stats or {}).get("dropped") or {}
        why = "; mail left out: " + ", ".join(f"{k} {v}" for k, v in sorted(drops.items(), key=lambda kv: -kv[1])) if drops else ""
        raise MailvoiceError(
            f"found {len(examples)} usable emails, need at least {opts.min_emails} (--min-emails){why}"
        )
    instr_meta = None
    if opts.instructions == "llm":
        from .instructions import generate_for_dataset

        examples, instr_meta = generate_for_dataset(examples, out_dir, url=opts.llm_url, model=opts.llm_model,
                                                    keep_urls=opts.keep_urls)
    elif opts.instructions != "heuristic":
        raise MailvoiceError(f"unknown --instructions {opts.instructions!r}: use heuristic or llm")
    train, val = split_by_thread(examples, opts.val_fraction, opts.seed)
    index = _retrieve_for(train, val, opts) if opts.rag else None  # before canaries: they never enter the index
    canaries = []
    if opts.plant_canaries:
        from .canaries import plant

        try:
            train, canaries = plant(train, opts.plant_canaries, repeats=opts.canary_repeats, seed=opts.seed)
        except ValueError as e:
            raise MailvoiceError(f"--plant-canaries: {e}") from None
    out_dir = make_private_dir(Path(out_dir))
    files = {}
    if canaries:
        from .canaries import write_canaries

        write_canaries(out_dir / CANARIES, canaries, repeats=opts.canary_repeats)
        files["canaries"] = len(canaries)
    elif (out_dir / CANARIES).exists():
        (out_dir / CANARIES).unlink()  # a previous prepare's canaries are not in this data
    if index is not None:
        index.save(out_dir / RETRIEVAL)
        files["retrieval"] = len(index.docs)
    elif (out_dir / RETRIEVAL).exists():
        import shutil

        shutil.rmtree(out_dir / RETRIEVAL)  # a previous prepare's index does not match these prompts
    write_profile(out_dir / CLEAN_PROFILE, stats.profile)  # for `mailvoice explain --user-id` (docs/formats.md)
    files["clean_profile"] = len(stats.profile.signatures)
    if opts.format in ("alpaca", "both"):
        files["train_alpaca"] = write_jsonl(out_dir / TRAIN_ALPACA, (e.alpaca() for e in train))
        files["val_alpaca"] = write_jsonl(out_dir / VAL_ALPACA, (e.alpaca() for e in val))
    if opts.format in ("chat", "both"):
        files["train_chat"] = write_jsonl(out_dir / TRAIN_CHAT, (e.chat() for e in train))
        files["val_chat"] = write_jsonl(out_dir / VAL_CHAT, (e.chat() for e in val))
    emailai_variant = None
    if opts.emailai_format:
        from .emailai_format import emailai_rows, variant

        emailai_variant = variant(None if opts.emailai_format is True else opts.emailai_format).name
        files["train_emailai"] = write_jsonl(out_dir / TRAIN_EMAILAI, emailai_rows(train, variant_name=emailai_variant))
        files["val_emailai"] = write_jsonl(out_dir / VAL_EMAILAI, emailai_rows(val, variant_name=emailai_variant))
    dates = sorted(e.date for e in examples if e.date)
    words = [len(e.output.split()) for e in examples]
    metadata = {
        "tool": f"mailvoice {__version__}",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "sources": list(sources),
        "source_stats": source_stats or {},
        "counts": {**stats.stages, "train": len(train), "val": len(val)},
        "dropped": dict(stats.dropped),
        "removed_zones": dict(stats.removed_zones),
        "pii": dict(stats.pii),
        "output_words": _describe(words),
        "date_range": [dates[0], dates[-1]] if dates else None,
        "split": {
            "method": "by thread, newest threads to val",
            "val_fraction": opts.val_fraction,
            "seed": opts.seed,
            "train_threads": len({e.thread_id for e in train}),
            "val_threads": len({e.thread_id for e in val}),
        },
        "format": opts.format,
        "files": files,
        "emailai_format": emailai_variant,  # which EmailAI prompt train/val_emailai.jsonl follow, if written
        "notes": {"share": opts.note_share, "train": sum(1 for e in train if e.notes),
                  "val": sum(1 for e in val if e.notes),
                  "method": "derived from the reply (notes.py): content words per sentence in order, asks, dates"},
    }
    if index is not None:
        metadata["rag"] = {**index.meta(), "with_examples": {
            "train": sum(1 for e in train if e.retrieved), "val": sum(1 for e in val if e.retrieved)}}
    if instr_meta is not None:
        metadata["instructions"] = instr_meta
        metadata["instructions_fallback"] = instr_meta["fallback"]
    if tokenizer is not None:
        metadata["tokens"] = _token_stats(tokenizer, examples)
    manifest = {
        "records": [dict(e.alpaca(), split="train") for e in train] + [dict(e.alpaca(), split="val") for e in val],
        "metadata": metadata,
    }
    write_json(out_dir / MANIFEST, manifest)
    return metadata


def _retrieve_for(train: list[Example], val: list[Example], opts: DatasetOptions):
    """Index the training replies and give every prompt its k nearest, never from its own thread."""
    from ..rag.index import Index, RagOptions, query_text

    index = Index.from_examples(train, RagOptions(opts.rag, opts.rag_k, opts.rag_max_chars))
    rows = train + val
    # the prompt's own fields only (never the reply): serving has nothing else to match on
    queries = [query_text(subject=e.subject, notes=e.llm_instruction, replying_to=e.input) for e in rows]
    for e, got in zip(rows, index.examples_many(queries, [e.thread_id for e in rows]), strict=True):
        e.retrieved = got
    return index


def _describe(values: list[int]) -> dict:
    if not values:
        return {}
    vs = sorted(values)
    return {
        "min": vs[0],
        "median": statistics.median(vs),
        "p95": vs[min(len(vs) - 1, int(0.95 * len(vs)))],
        "max": vs[-1],
        "mean": round(statistics.fmean(vs), 1),
    }


def _token_stats(tokenizer, examples: Sequence[Example]) -> dict:
    from ..chat import format_for

    fmt = format_for(tokenizer)
    lengths = []
    for e in examples:
        c = e.chat()["messages"]
        text = fmt.render_prompt(c[1]["content"], c[0]["content"]) + fmt.render_reply(c[2]["content"])
        lengths.append(len(tokenizer(text, add_special_tokens=False)["input_ids"]))
    return {"tokenizer": getattr(tokenizer, "name_or_path", ""), **_describe(lengths)}
