"""``mailvoice deploy``: a trained adapter → an Ollama model ``emailai-<user>`` that answers and stops.

Merged (default; works on every Ollama version): merge into the 16-bit base, convert to GGUF,
quantize (Q4_K_M unless told otherwise), push the blob, ``/api/create`` with ``files``,
``template``, ``system`` and ``parameters``. Adapter (``--adapter``): a GGUF LoRA on the
non-quantized Ollama tag of the base it was trained on, through ``/api/create``'s ``adapters``;
when the base has no known tag, the server lacks it, or the server refuses adapter models, it
falls back to merged and says why. Then ``/api/generate`` a probe: no answer or no stop → the
model is deleted again and nothing is registered. ``--dry-run`` writes the GGUF(s) and a
Modelfile with absolute paths for ``ollama create``, touching no server. The record keeps the
account addresses EmailAI drafts as (``--user-email``, else those of the prepared mail) under
``emails``, which is how ``mailvoice gateway`` finds the user.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..artifacts import ADAPTER_WEIGHTS, EVAL_METRICS, Adapter
from ..chat import SYSTEM_PROMPT, ChatFormat, instruction_for
from ..errors import MailvoiceError
from ..workspace import make_private_dir, sha256_file, write_json, write_text
from . import gguf
from .emailai_env import env_lines, gateway_command, render_env, update_env_file, with_token
from .modelfile import model_name, ollama_parameters, ollama_tag_for, render_modelfile, serving_template

# A third-party report says Ollama 0.34.1 refuses to create new adapter models; we still ask,
# and fall back to merged on refusal, but say so up front for these versions.
ADAPTER_REFUSAL_REPORTED_FROM = (0, 34, 1)
PROBE_TOKENS = 256


@dataclass
class DeployOptions:
    mode: str = "merged"  # merged | adapter
    quantize: str | None = None
    ollama_url: str | None = None
    dry_run: bool = False
    env_file: Path | None = None
    lora: bool = True  # also write the GGUF LoRA (for `mailvoice serve`), cheap
    lora_outtype: str = "f16"
    eval_metrics: Path | None = None
    # the account addresses EmailAI drafts as (validated: registry.account_emails); empty → the
    # addresses the user's prepared mail knows (registry.dataset_account_emails), if any
    emails: list[str] = field(default_factory=list)
    # EmailAI's settings: "gateway" (EmailAI → mailvoice gateway at gateway_url, the base model as
    # its one model) or "single-user" (EmailAI → Ollama, this voice model for every call)
    setup: str = "gateway"
    gateway_url: str | None = None


@dataclass
class DeployResult:
    model: str
    mode: str
    out_dir: Path
    modelfile: Path
    gguf: Path | None
    lora_gguf: Path | None
    record: dict
    env: dict[str, str]
    notices: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    gateway_command: str | None = None  # the `mailvoice gateway` line the gateway set-up needs


def _eval_scores(art: Adapter, explicit: Path | None) -> dict | None:
    """The scores of this adapter's own evaluation: the metrics its ``evaluation.json`` names
    (only while the weights are those evaluated), else a ``metrics.json`` beside the adapter.
    Never the newest file in the workspace: that may be another adapter's."""
    ev = None
    try:
        ev = art.evaluation
    except MailvoiceError:
        pass
    recorded = Path(ev["metrics"]) if ev and ev.get("metrics") and ev.get("adapter_sha256") == art.digest() else None
    cands = [explicit] if explicit else [recorded, art.path / EVAL_METRICS, art.path.parent / EVAL_METRICS]
    for p in cands:
        if p and Path(p).is_file():
            try:
                m = json.loads(Path(p).read_text())
            except json.JSONDecodeError:
                continue
            keep = {k: v for k, v in m.items() if isinstance(v, (int, float, dict)) and k != "prompts"}
            return {"source": str(p), **keep}
    if explicit:
        raise MailvoiceError(f"evaluation metrics not found: {explicit}")
    return None


def deploy(model: Path, user_id: str, space, opts: DeployOptions, log=print) -> DeployResult:
    from ..tools import require_toolchain

    t0 = time.monotonic()
    timings: dict[str, float] = {}
    notices: list[str] = []

    def note(msg: str) -> None:
        notices.append(msg)
        log(msg)

    art = Adapter.open(model)
    adapter = art.path
    base = gguf.resolve_base(art)
    fmt = art.chat_format
    quant = gguf.normalise_quant(opts.quantize)
    template = serving_template(fmt)
    name = model_name(user_id)
    emails = _account_emails(opts, space, note)
    out = make_private_dir(space.models / name)
    mode = opts.mode
    base_tag = ollama_tag_for(base.hf_id)
    if mode == "adapter" and not base_tag:
        note(f"no Ollama tag is known for base {base.hf_id} (see docs/deploy.md); deploying merged instead")
        mode = "merged"

    client = None
    version = None
    if not opts.dry_run:  # fail fast, before minutes of conversion, when the server is down
        from .ollama import OllamaClient

        client = OllamaClient(opts.ollama_url)
        version = client.version()
        if mode == "adapter":
            from .ollama import _version_tuple

            if _version_tuple(version) >= ADAPTER_REFUSAL_REPORTED_FROM:
                note(f"Ollama {version}: versions from 0.34.1 are reported to refuse new adapter models; trying, with merged as the fallback")
            if not client.has_model(base_tag):
                note(f"base {base_tag} is not on the Ollama server (run `ollama pull {base_tag}`); deploying merged instead")
                mode = "merged"

    tc = require_toolchain(binaries=("llama-quantize",) if quant not in ("f16", "f32") else ())
    lora_gguf = None
    if opts.lora or mode == "adapter":
        t = time.monotonic()
        log("converting the adapter to a GGUF LoRA")
        lora_gguf = gguf.convert_lora(tc, adapter, base, out / f"{name}-lora-{opts.lora_outtype}.gguf", outtype=opts.lora_outtype)
        timings["lora_gguf_s"] = round(time.monotonic() - t, 2)

    def build_merged() -> Path:
        final = out / f"{name}-{quant}.gguf"
        t = time.monotonic()
        log("merging the adapter into the full-precision base")
        merged_dir = gguf.merge_adapter(adapter, base, out / ".merged-hf")
        timings["merge_s"] = round(time.monotonic() - t, 2)
        try:
            t = time.monotonic()
            log("converting to GGUF")
            hi = "f32" if quant == "f32" else "f16"
            hi_path = final if quant in ("f16", "f32") else out / f".{name}-{hi}.gguf"
            gguf.convert_hf(tc, merged_dir, hi_path, outtype=hi, name=name)
            timings["convert_s"] = round(time.monotonic() - t, 2)
        finally:
            shutil.rmtree(merged_dir, ignore_errors=True)
        if quant not in ("f16", "f32"):
            t = time.monotonic()
            log(f"quantizing to {gguf.QUANTS[quant]}")
            try:
                gguf.quantize(tc, hi_path, final, quant)
            finally:
                hi_path.unlink(missing_ok=True)
            timings["quantize_s"] = round(time.monotonic() - t, 2)
        for stale in out.glob(f"{name}-*.gguf"):
            if stale not in (final, lora_gguf) and "-lora-" not in stale.name:
                stale.unlink()
        return final

    merged_gguf = build_merged() if mode == "merged" else None

    def modelfile_for(m: str) -> Path:
        if m == "adapter":
            text = render_modelfile(from_=base_tag, adapter=str(lora_gguf.absolute()), fmt=fmt, template=template)
        else:
            text = render_modelfile(from_=str(merged_gguf.absolute()), fmt=fmt, template=template)
        return write_text(out / "Modelfile", text)

    modelfile = modelfile_for(mode)
    env = env_lines(name, opts.ollama_url, setup=opts.setup, base_model=base_tag, gateway_url=opts.gateway_url)
    gw_command = gateway_command(opts.ollama_url, opts.gateway_url) if opts.setup == "gateway" else None
    if opts.setup == "gateway" and not base_tag:
        note(f"no Ollama tag is known for base {base.hf_id}: put it on the Ollama server and set "
             "NEXT_PUBLIC_OLLAMA_MODEL / OLLAMA_MODEL to its name (EmailAI's calls that are not drafts go to it)")
    elif opts.setup == "gateway" and client is not None and mode != "adapter" and not client.has_model(base_tag):
        note(f"the base model {base_tag} is not on the Ollama server: run `ollama pull {base_tag}` "
             "(EmailAI's calls that are not drafts go to it through the gateway)")
    record = {
        "model": name,
        "user_id": user_id,
        "mode": mode,
        "base_hf_id": base.hf_id,
        "base_path": str(base.path),
        "ollama_base": base_tag if mode == "adapter" else None,
        "chat_format": fmt.name,
        "quantize": quant if mode == "merged" else None,
        "adapter": str(adapter.absolute()),
        "adapter_digest": "sha256:" + sha256_file(adapter / ADAPTER_WEIGHTS[0]),
        "gguf": str(merged_gguf) if merged_gguf else None,
        "gguf_bytes": merged_gguf.stat().st_size if merged_gguf else None,
        "lora_gguf": str(lora_gguf) if lora_gguf else None,
        "lora_gguf_bytes": lora_gguf.stat().st_size if lora_gguf else None,
        "modelfile": str(modelfile),
        "evaluation": _eval_scores(art, opts.eval_metrics),
        "emails": emails,  # the gateway routes EmailAI's drafting calls for these accounts here
        "llama_cpp": tc.describe().get("version") or tc.source,
    }
    if opts.dry_run:
        record.update({"dry_run": True, "planned_at": _now()})
        write_json(out / "deploy-plan.json", record)
        timings["total_s"] = round(time.monotonic() - t0, 2)
        return DeployResult(name, mode, out, modelfile, merged_gguf, lora_gguf, record, env, notices, timings,
                            gw_command)

    t = time.monotonic()
    created_mode = _create(client, name, mode, fmt, template, merged_gguf, lora_gguf, base_tag, log, note)
    if created_mode != mode:  # the server refused the adapter model: merged it is
        mode = created_mode
        merged_gguf = build_merged()
        created_mode = _create(client, name, mode, fmt, template, merged_gguf, lora_gguf, base_tag, log, note)
        modelfile = modelfile_for(mode)
        record.update({"mode": mode, "ollama_base": None, "quantize": quant, "gguf": str(merged_gguf),
                       "gguf_bytes": merged_gguf.stat().st_size, "modelfile": str(modelfile)})
    timings["create_s"] = round(time.monotonic() - t, 2)
    t = time.monotonic()
    try:
        probe = verify(client, name, fmt)
    except BaseException:
        client.delete(name)  # no half-created model stays behind
        raise
    timings["verify_s"] = round(time.monotonic() - t, 2)
    record.update({"ollama_url": client.url, "ollama_version": version, "probe": probe, "deployed_at": _now()})
    timings["total_s"] = round(time.monotonic() - t0, 2)
    record["timings"] = timings
    from . import registry

    registry.save(record, space.root)
    if opts.env_file:
        update_env_file(opts.env_file, with_token(env))
    client.close()
    return DeployResult(name, mode, out, modelfile, merged_gguf, lora_gguf, record, env, notices, timings, gw_command)


def _account_emails(opts: DeployOptions, space, note) -> list[str]:
    from . import registry

    if opts.emails:
        return registry.account_emails(opts.emails)
    found = registry.dataset_account_emails(space.data)
    if found:  # counts only: addresses are private data
        note(f"no --user-email given: recording the {len(found)} account address(es) your prepared mail was sent "
             "from, for the gateway's routing (--user-email sets them)")
    return found


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _create(client, name, mode, fmt, template, merged_gguf, lora_gguf, base_tag, log, note) -> str:
    """Push blobs and /api/create; → the mode that was created ("merged" after a refused adapter)."""
    body = {"model": name, "template": template, "system": SYSTEM_PROMPT, "parameters": ollama_parameters(fmt)}
    if mode == "adapter":
        digest = "sha256:" + sha256_file(lora_gguf)
        log("uploading the GGUF LoRA")
        client.push_blob(lora_gguf, digest)
        try:
            client.create({**body, "from": base_tag, "adapters": {lora_gguf.name: digest}}, on_status=None)
            return "adapter"
        except MailvoiceError as e:
            client.delete(name)
            note(f"the Ollama server refused the adapter model ({str(e).split(': ', 1)[-1]}); deploying merged instead")
            return "merged"
    digest = "sha256:" + sha256_file(merged_gguf)
    log(f"uploading {merged_gguf.name} ({merged_gguf.stat().st_size / 2**20:.1f} MiB)")
    client.push_blob(merged_gguf, digest)
    try:
        client.create({**body, "files": {merged_gguf.name: digest}})
    except MailvoiceError:
        client.delete(name)
        raise
    return "merged"


def probe_prompt() -> str:
    return instruction_for(subject="Quick check-in", recipient="a colleague")


def verify(client, name: str, fmt: ChatFormat, *, max_tokens: int | None = None) -> dict:
    """/api/generate a probe: the model must answer (non-empty) and stop on its own."""
    max_tokens = max_tokens or PROBE_TOKENS
    r = client.generate(name, probe_prompt(), options={"num_predict": max_tokens, "temperature": 0, "seed": 0})
    text = r.get("response") or ""
    reason = r.get("done_reason")
    if not text.strip():
        raise MailvoiceError(f"{name} was created but gave an empty answer to the probe; removed it again")
    if reason != "stop" or any(s in text for s in fmt.stop):
        raise MailvoiceError(
            f"{name} was created but did not stop within {max_tokens} tokens (done_reason={reason}); removed it again: "
            "check that the adapter learned its end token"
        )
    return {"ok": True, "done_reason": reason, "eval_count": r.get("eval_count"), "chars": len(text)}


def write_env(values: dict[str, str]) -> str:
    return render_env(values)
