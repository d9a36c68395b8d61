"""The command line: parse, call the stage, print a summary. No logic lives here.

Every expected failure is a ``MailvoiceError`` and becomes one ``error: …`` line on stderr with a
non-zero exit; email text, tokens and keys are never printed.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import __version__
from .errors import MailvoiceError, NotAvailableYet

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
    format: Annotated[str, typer.Option("--format", help="alpaca, chat or both.")] = "both",
    seed: Annotated[int, typer.Option("--seed")] = 42,
    instructions: Annotated[str, typer.Option("--instructions", help="heuristic (default) or llm.")] = "heuristic",
    plant_canaries: Annotated[int, typer.Option("--plant-canaries", min=0)] = 0,
    workspace: Workspace = None,
):
    """Read your sent mail and write train/val JSONL (alpaca and chat) plus a manifest."""
    from . import ui
    from .dataset.build import DatasetOptions
    from .dataset.prepare import prepare as run_prepare

    if instructions != "heuristic":
        raise NotAvailableYet(f"--instructions {instructions}")
    space = _space(user_id, workspace)
    out = output or space.data
    with ui.step("reading and cleaning mail") as _tick:
        res = run_prepare(
            sources=source,
            out_dir=out,
            user_emails=user_email,
            db_url=db_url,
            user_id=user_id,
            opts=DatasetOptions(min_emails=min_emails, format=format, seed=seed, plant_canaries=plant_canaries),
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
    if m["pii"]:
        ui.out.print("PII replaced: " + ", ".join(f"{k} {v}" for k, v in sorted(m["pii"].items())))
    if plant_canaries:
        ui.out.print(f"planted {plant_canaries} canaries in the training replies ({res.out_dir / 'canaries.json'}); evaluate reports their leakage")
    ui.out.print(f"review it before training: mailvoice review {res.out_dir}")


# --------------------------------------------------------------------------------------------- clean
@app.command()
def clean(
    file: Annotated[Path, typer.Argument(help="One .eml file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print {text, removed, …} as JSON.")] = False,
):
    """Show exactly what would be trained on from one email, and what was removed and why."""
    from .clean import extract_author_text
    from .sources import parse_message

    if not file.is_file():
        raise MailvoiceError(f"file not found: {file}")
    rec = parse_message(file.read_bytes(), source=f"eml:{file.name}")
    ex = extract_author_text(rec.text, rec.html)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "text": ex.text,
                    "removed": [{"kind": z.kind, "reason": z.reason, "text": z.text} for z in ex.removed],
                    "quoted": ex.quoted,
                    "is_forward": ex.is_forward,
                },
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    typer.echo(ex.text)
    for z in ex.removed:
        typer.echo(f"\n--- removed {z.kind}: {z.reason} ---\n{z.text}", err=True)


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
    config: Annotated[Path, typer.Option("--config", help="YAML config (configs/lora-config-8b.yaml, …).")] = Path("configs/lora-config-cpu.yaml"),
    output: Annotated[Optional[Path], typer.Option("--output", help="Run folder.")] = None,
    resume_from_checkpoint: Annotated[Optional[str], typer.Option("--resume-from-checkpoint", help="PATH or auto.")] = None,
    user_id: Annotated[Optional[str], typer.Option("--user-id", help="Train on this user's prepared data.")] = None,
    data: Annotated[Optional[Path], typer.Option("--data", help="Dataset folder (default: the user's data/).")] = None,
    max_steps: Annotated[Optional[int], typer.Option("--max-steps")] = None,
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

    cfg = load_config(config, {"max_steps": max_steps, "base_model": base_model})
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
    data_dir, run_dir = _train_paths(cfg, user_id, data, output, workspace)
    hook = None
    if backup_to:
        from .vault import make_checkpoint_hook

        if not user_id:
            raise MailvoiceError("--backup-to needs --user-id (backups are per user)")
        recipients = recipient or [r for r in os.environ.get("MAILVOICE_AGE_RECIPIENTS", "").split(",") if r]
        hook = make_checkpoint_hook(backup_to, user_id, recipients or None, passphrase_file=passphrase_file,
                                    root=workspace, storage_options=_storage(backup_to))
    result = _run_training(cfg, data_dir, run_dir, resume_from_checkpoint, hook)
    s = result.summary
    ui.out.print(
        f"[green]trained[/] {s['steps']} steps in {s['wall_time_s']:.0f}s "
        f"({s['tokens_per_s']} tok/s), final loss {s['final_train_loss']:.3f} → {result.final_dir}"
    )


def _train_paths(cfg, user_id, data, output, workspace):
    if user_id:
        space = _space(user_id, workspace).ensure()
        data_dir = data or space.data
        run_dir = output or space.runs / "latest"
    else:
        data_dir = data or Path(cfg.train_file).parent
        run_dir = output or Path(cfg.output_dir)
    return Path(data_dir), Path(run_dir)


def _run_training(cfg, data_dir, run_dir, resume, on_checkpoint=None):
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
        )


# --------------------------------------------------------------------------------------------- evaluate
@app.command()
def evaluate(
    model: Annotated[Path, typer.Option("--model", help="Run folder or PEFT adapter folder.")],
    test_data: Annotated[Path, typer.Option("--test-data")] = Path("data-samples/test-prompts.json"),
    output: Annotated[Path, typer.Option("--output")] = Path("evaluation-results.json"),
    data: Annotated[Optional[Path], typer.Option("--data", help="Dataset folder with val_chat.jsonl.")] = None,
    report: Annotated[Optional[Path], typer.Option("--report")] = None,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", min=1)] = 200,
    min_voice_score: Annotated[Optional[float], typer.Option("--min-voice-score")] = None,
    min_novelty: Annotated[Optional[float], typer.Option("--min-novelty")] = None,
    max_canary_leaks: Annotated[Optional[int], typer.Option("--max-canary-leaks")] = None,
):
    """Generate with the tuned and the base model side by side; held-out perplexity."""
    from . import ui
    from .evaluate.generate import GenOptions
    from .evaluate.run import evaluate as run_eval

    for flag, val in (("--report", report), ("--min-voice-score", min_voice_score), ("--min-novelty", min_novelty), ("--max-canary-leaks", max_canary_leaks)):
        if val is not None:
            raise NotAvailableYet(flag)
    res = _run_eval(run_eval, model, test_data, output, data, GenOptions(max_new_tokens=max_new_tokens))
    p = res.metrics["val_perplexity"]
    ui.out.print(f"[green]evaluated[/] {res.metrics['prompts']} prompts → {res.results_path} (metrics: {res.metrics_path})")
    if p["base"] is not None:
        ui.out.print(f"held-out perplexity: base {p['base']:.1f} → tuned {p['tuned']:.1f}")


def _run_eval(run_eval, model, test_data, output, data, opts):
    from . import ui

    with ui.step("generating (tuned, then base)") as tick:
        return run_eval(model=model, test_data=test_data, output=output, data_dir=data, opts=opts, tick=tick)


# --------------------------------------------------------------------------------------------- deploy
@app.command()
def deploy(
    model: Annotated[Path, typer.Option("--model", help="Run folder or PEFT adapter folder.")],
    user_id: UserId,
    merge: Annotated[bool, typer.Option("--merge", help="Merge into the base and ship one GGUF.")] = False,
    quantize: Annotated[Optional[str], typer.Option("--quantize")] = None,
    ollama_url: Annotated[Optional[str], typer.Option("--ollama-url", envvar="OLLAMA_HOST", show_envvar=False)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Write the artefacts only.")] = False,
    target: Annotated[str, typer.Option("--target", help="ollama or vllm.")] = "ollama",
    workspace: Workspace = None,
):
    """Write the adapter and an Ollama Modelfile for this user's model."""
    from . import ui
    from .deploy.modelfile import write_artefacts
    from .evaluate.generate import resolve_adapter

    if merge:
        raise NotAvailableYet("--merge")
    if quantize:
        raise NotAvailableYet("--quantize")
    if target != "ollama":
        raise NotAvailableYet(f"--target {target}")
    if ollama_url and not dry_run:
        raise NotAvailableYet("creating the model on an Ollama server (--ollama-url)")
    space = _space(user_id, workspace).ensure()
    art = write_artefacts(resolve_adapter(model), user_id, space.models)
    ui.out.print(f"[green]deploy artefacts[/] for {art.model_name} → {art.out_dir}")
    ui.out.print(f"  Modelfile: {art.modelfile}\n  adapter:   {art.adapter_dir}")
    ui.out.print(f"  then: ollama create {art.model_name} -f {art.modelfile}")


# --------------------------------------------------------------------------------------------- vault
keys_app = typer.Typer(help="age keys for encrypted backups.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
backup_app = typer.Typer(help="Encrypted, verified backups of one user's data.", invoke_without_command=True)
app.add_typer(backup_app, name="backup")

Bucket = Annotated[Optional[str], typer.Option("--bucket", help="S3 bucket (--method s3) or a folder/URL (local, any fsspec URL).")]
Method = Annotated[str, typer.Option("--method", help="s3, local, or url (any fsspec URL in --bucket).")]
Identity = Annotated[Optional[Path], typer.Option("--identity", envvar="MAILVOICE_AGE_IDENTITY_FILE", help="age identity file (never pass keys on argv).")]
Passphrase = Annotated[Optional[Path], typer.Option("--passphrase-file", help="File holding a backup passphrase.")]


def _dest(method: str, bucket: str | None) -> str:
    if not bucket:
        raise MailvoiceError("--bucket is required (an S3 bucket name, or a folder for --method local)")
    if method == "s3":
        name = bucket.removeprefix("s3://").strip("/")
        return f"s3://{name}" if "/" in name else f"s3://{name}/mailvoice"
    if method in ("local", "url"):
        return bucket
    raise MailvoiceError(f"unknown --method {method!r}: use s3, local or url")


def _storage(dest: str, sse: str | None = None, storage_class: str | None = None) -> dict | None:
    if not dest.startswith("s3://"):
        return None
    from .vault import storage_options

    return storage_options(dest, endpoint_url=os.environ.get("AWS_ENDPOINT_URL"), sse=sse, storage_class=storage_class)


@backup_app.callback()
def backup(
    ctx: typer.Context,
    user_id: Annotated[Optional[str], typer.Option("--user-id")] = None,
    method: Method = "s3",
    bucket: Bucket = None,
    recipient: Annotated[list[str], typer.Option("--recipient", help="age public key or recipients file; repeatable.")] = [],
    passphrase_file: Passphrase = None,
    part: Annotated[list[str], typer.Option("--part", help="data, checkpoints, model, configs, eval; repeatable (default all).")] = [],
    cleanup: Annotated[bool, typer.Option("--cleanup", help="Delete local sensitive data after a verified backup.")] = False,
    no_encrypt: Annotated[bool, typer.Option("--no-encrypt", help="Store plaintext (not recommended).")] = False,
    sse: Annotated[Optional[str], typer.Option("--sse", help="S3 server-side encryption (AES256 or aws:kms).")] = None,
    storage_class: Annotated[Optional[str], typer.Option("--storage-class")] = None,
    workspace: Workspace = None,
):
    """Encrypted backup of a user's data, checkpoints and model (tar → age → storage, verified)."""
    if ctx.invoked_subcommand:
        return
    from . import ui
    from .vault import PARTS
    from .vault import backup as run_backup

    if not user_id:
        raise MailvoiceError("--user-id is required")
    _space(user_id, workspace)
    dest = _dest(method, bucket)
    recipients = recipient or [r for r in os.environ.get("MAILVOICE_AGE_RECIPIENTS", "").split(",") if r]
    if not (recipients or passphrase_file or no_encrypt or os.environ.get("MAILVOICE_BACKUP_PASSPHRASE")):
        raise MailvoiceError("no recipient: pass --recipient age1… (see `mailvoice keys new`), --passphrase-file, or --no-encrypt")
    if no_encrypt:
        ui.err.print("[bold red]WARNING: --no-encrypt stores your mail and model in plaintext.[/]")
    with ui.step("backing up (tar → age → upload → verify)"):
        res = run_backup(user_id, dest, parts=tuple(part) or PARTS, recipients=recipients or None,
                         passphrase_file=passphrase_file, no_encrypt=no_encrypt, cleanup=cleanup,
                         root=workspace, storage_options=_storage(dest, sse, storage_class))
    ui.out.print(f"[green]backup {res.backup_id}[/] {res.files} files, {res.bytes} bytes → {res.location} "
                 f"({'encrypted' if res.encrypted else 'NOT encrypted'}, verified)")
    if res.deleted:
        ui.out.print(f"cleaned up {len(res.deleted)} local paths after the verified backup")


@backup_app.command("verify")
def backup_verify(
    user_id: UserId,
    method: Method = "s3",
    bucket: Bucket = None,
    backup_id: Annotated[Optional[str], typer.Option("--backup-id")] = None,
    identity: Identity = None,
    passphrase_file: Passphrase = None,
):
    """Re-check a backup's size and digest (and every file, given the key)."""
    from . import ui
    from .vault import verify_backup

    dest = _dest(method, bucket)
    r = verify_backup(dest, user_id, backup_id, identity_file=identity, passphrase_file=passphrase_file,
                      storage_options=_storage(dest))
    ui.out.print(f"[green]ok[/] backup {r.backup_id}: archive {r.archive_size} bytes, sha256 matches"
                 + (f", {r.files_checked} files decrypted and checked" if r.decrypted else ""))


@backup_app.command("list")
def backup_list(user_id: UserId, method: Method = "s3", bucket: Bucket = None):
    """Backups of a user, newest last; incomplete ones are marked."""
    from . import ui
    from .vault import list_backups

    dest = _dest(method, bucket)
    for b in list_backups(dest, user_id, storage_options=_storage(dest), include_incomplete=True):
        ui.out.print(f"{b.backup_id}\t{b.created}\t{b.kind}\t{'complete' if b.complete else 'INCOMPLETE: ' + b.reason}")


@app.command()
def restore(
    user_id: UserId,
    method: Method = "s3",
    bucket: Bucket = None,
    backup_id: Annotated[Optional[str], typer.Option("--backup-id")] = None,
    identity: Identity = None,
    passphrase_file: Passphrase = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite newer local data.")] = False,
    workspace: Workspace = None,
):
    """Restore a user's latest complete backup (every digest checked before anything moves)."""
    from . import ui
    from .vault import restore as run_restore

    _space(user_id, workspace)
    dest = _dest(method, bucket)
    with ui.step("restoring (download → decrypt → check → move into place)"):
        r = run_restore(user_id, dest, backup_id=backup_id, identity_file=identity, passphrase_file=passphrase_file,
                        force=force, root=workspace, storage_options=_storage(dest))
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

    pub = new_identity(identity, overwrite=overwrite)
    ui.out.print(f"wrote {identity} (keep it offline and private)\nrecipient: {pub}")


# --------------------------------------------------------------------------------------------- models
@models_app.command("list")
def models_list(workspace: Workspace = None):
    """Every deployed model in the workspace."""
    from . import ui
    from .workspace import resolve_root

    root = resolve_root(workspace)
    found = sorted(root.glob("*/models/*/deploy.json")) if root.is_dir() else []
    if not found:
        ui.out.print("no deployed models")
    for p in found:
        d = json.loads(p.read_text())
        ui.out.print(f"{d['model']}\tuser {d['user_id']}\tbase {d['ollama_base']}\t{d['created']}")


@models_app.command("show")
def models_show(user_id: UserId, workspace: Workspace = None):
    from .deploy.modelfile import model_name

    p = _space(user_id, workspace).models / model_name(user_id) / "deploy.json"
    if not p.is_file():
        raise MailvoiceError(f"no deployed model for user {user_id}")
    typer.echo(p.read_text())


@models_app.command("remove")
def models_remove(user_id: UserId, workspace: Workspace = None):
    raise NotAvailableYet("models remove")


# --------------------------------------------------------------------------------------------- demo
@app.command()
def demo(
    workspace: Annotated[Path, typer.Option("--workspace", envvar="MAILVOICE_HOME")] = Path("mailvoice-demo"),
    mailbox: Annotated[Optional[Path], typer.Option("--mailbox", help="Default: the bundled sample.")] = None,
    steps: Annotated[int, typer.Option("--steps", min=1, help="LoRA steps.")] = 60,
    base_model: Annotated[str, typer.Option("--base-model")] = "smollm2-135m",
):
    """Prepare → train → evaluate → deploy on the bundled sample mailbox, on CPU."""
    from .demo import run_demo

    run_demo(workspace=workspace, mailbox=mailbox, steps=steps, base_model=base_model)


def main(argv: list[str] | None = None) -> int:
    try:
        app(args=argv, standalone_mode=False)
    except MailvoiceError as e:
        typer.echo(f"error: {e}", err=True)
        return e.exit_code
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        return 130
    except typer.Exit as e:
        return e.exit_code
    except typer.Abort:
        return 1
    except Exception as e:  # click's usage errors
        import click

        if isinstance(e, click.ClickException):
            e.show()
            return e.exit_code
        raise
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
