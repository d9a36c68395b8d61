"""``mailvoice demo``: the whole pipeline once, on the bundled sample mailbox, on CPU.

It uses the same stage functions the verbs use, with the CPU preset, so a green demo means
the real path works end to end: prepare → train → evaluate → deploy.
"""

from __future__ import annotations

import time
from pathlib import Path

from . import samples

DEMO_USER = "dana"
DEMO_ADDRESS = "dana@willowcreek-design.example"


def _have_llama_cpp() -> bool:
    from .tools import find_toolchain

    tc = find_toolchain()
    return tc.tree is not None and {"llama-quantize"} <= set(tc.binaries)


def served_draft(lora_gguf: Path, base_path: str, chat_format: str, user_turn: str, *, root: Path,
                 max_tokens: int = 120) -> dict:
    """One draft from ``llama-server`` with the user's GGUF LoRA, and the base's answer to the same
    prompt from the same server (LoRA scale 0): the voice served, next to what it replaces.
    The prompt is rendered with the serving TEMPLATE (``deploy.serve``), as EmailAI's calls are;
    both sides sample with the Modelfile's parameters and the same seed, as evaluate does."""
    from .deploy.modelfile import EMAIL_PARAMETERS
    from .deploy.serve import MultiUserServer, shared_base_gguf

    base_gguf = shared_base_gguf(Path(base_path), root)
    srv = MultiUserServer(base_gguf, {"voice": Path(lora_gguf)}, chat_format=chat_format)
    prompt = srv.prompt_for([{"role": "user", "content": user_turn}])
    sampling = {"top_p": EMAIL_PARAMETERS["top_p"], "repeat_penalty": EMAIL_PARAMETERS["repeat_penalty"], "seed": 0}

    def answer(lora: list[dict]) -> dict:
        return srv.backend.complete(prompt, n_predict=max_tokens, lora=lora, stop=list(srv.fmt.stop),
                                    temperature=EMAIL_PARAMETERS["temperature"], options=sampling)

    srv.backend.start()
    try:
        tuned = answer(srv.lora_for("voice"))
        base = answer([{"id": 0, "scale": 0.0}])
    finally:
        srv.backend.stop()
    command = f"{srv.backend.binary} -m {base_gguf} --lora {lora_gguf} --port 8080"
    return {"tuned": tuned["content"].strip(), "base": base["content"].strip(), "base_gguf": str(base_gguf),
            "command": command}


def sample_path(*parts: str) -> Path:
    return samples.sample(*parts)


def run_demo(*, workspace: Path, mailbox: Path | None = None, steps: int = 24, base_model: str = "smollm2-135m",
             eval_prompts: int = 6, max_new_tokens: int = 100, rag: str | None = None) -> dict:
    """``rag``: also put Dana's retrieved past emails in every prompt (bm25 or minilm) and have
    evaluate compare the tuned model with and without them."""
    from rich.table import Table

    from . import ui
    from .dataset.build import DatasetOptions
    from .dataset.prepare import prepare
    from .deploy.modelfile import write_artefacts
    from .evaluate.generate import GenOptions
    from .evaluate.run import EvalOptions, evaluate
    from .models import resolve_base_model
    from .train.config import load_config
    from .train.run import load_tokenizer, train
    from .workspace import user_space

    t0 = time.time()
    mailbox = Path(mailbox) if mailbox else sample_path("mailboxes", "dana-sent.mbox")
    space = user_space(DEMO_USER, workspace).ensure()
    timings = {}

    ui.err.rule("1/4 prepare")
    with ui.step("loading the base model (built once into the cache)"):
        base = resolve_base_model(base_model)
        tok, _ = load_tokenizer(base)
    t = time.time()
    with ui.step("reading, cleaning and pairing the sample mail"):
        prep = prepare(
            sources=[str(mailbox)],
            out_dir=space.data,
            user_emails=[DEMO_ADDRESS],
            opts=DatasetOptions(min_emails=20, rag=rag),
            tokenizer=tok,
            notice=ui.notice,
        )
    timings["prepare"] = time.time() - t

    ui.err.rule("2/4 train")
    cfg = load_config(samples.sample(*samples.CPU_CONFIG), {"max_steps": steps, "base_model": base_model})
    t = time.time()
    with ui.step("LoRA on CPU", total=steps) as tick:
        result = train(
            cfg,
            data_dir=space.data,
            run_dir=space.runs / "demo",
            progress=lambda s, total, logs: tick(total=total, completed=s),
            notice=ui.notice,
        )
    timings["train"] = time.time() - t

    ui.err.rule("3/4 evaluate")
    t = time.time()
    ev = evaluate(
        result.final_dir,
        sample_path("test-prompts.json"),
        space.eval / "evaluation-results.json",
        EvalOptions(
            data_dir=space.data,
            max_val_prompts=eval_prompts,
            gen=GenOptions.decoding("served", max_new_tokens),
            max_control_rows=12,  # the demo's time budget; `mailvoice evaluate` uses more
        ),
        step=ui.step,
        notice=ui.notice,
    )
    timings["evaluate"] = time.time() - t

    ui.err.rule("4/4 deploy")
    t = time.time()
    art = write_artefacts(result.final_dir, DEMO_USER, space.models)
    gguf = None
    if _have_llama_cpp():
        from .deploy.pipeline import DeployOptions, deploy

        with ui.step("merging, converting to GGUF and quantizing (dry run: no server)"):
            dep = deploy(result.final_dir, DEMO_USER, space, DeployOptions(dry_run=True), log=ui.notice)
        gguf = dep.gguf
    else:
        ui.notice("llama.cpp tools not installed (`mailvoice tools install`, about 8 minutes once on 2 cores; "
                  "`bash scripts/bootstrap.sh demo` builds them): skipping the GGUF and the served draft")
    timings["deploy"] = time.time() - t
    served = None
    if gguf and dep.lora_gguf:
        import json

        ui.err.rule("served: llama-server with Dana's LoRA")
        email = json.loads(sample_path("test-prompts.json").read_text())[0]["prompt"]
        t = time.time()
        with ui.step("one draft from llama-server, with the LoRA and without it"):
            served = served_draft(dep.lora_gguf, dep.record["base_path"], dep.record["chat_format"], email,
                                  root=Path(workspace), max_tokens=max_new_tokens)
        timings["serve"] = time.time() - t

    m = prep.metadata
    ppl = ev.metrics["val_perplexity"]
    table = Table(title="mailvoice demo", show_lines=False)
    table.add_column("stage")
    table.add_column("result")
    table.add_column("where")
    table.add_row("prepare", f"{m['counts']['train']} train / {m['counts']['val']} val examples", str(space.data))
    table.add_row("train", f"{result.summary['steps']} steps, loss {result.summary['final_train_loss']:.2f}", str(result.final_dir))
    ppl_text = f"held-out perplexity {ppl['base']:.1f} → {ppl['tuned']:.1f}" if ppl["base"] else "no val rows"
    table.add_row("evaluate", f"{ev.metrics['prompts']} prompts; {ppl_text}", str(ev.results_path))
    if ev.metrics.get("rag"):
        r = ev.metrics["rag"]
        table.add_row("retrieval", f"P(Dana) with {(r['with'] or {}).get('p_user') or 0:.2f}, "
                      f"without {(r['without'] or {}).get('p_user') or 0:.2f}", str(Path(space.data) / "retrieval"))
    table.add_row("deploy", f"{art.model_name}: adapter + Modelfile" + (f" + {Path(gguf).name}" if gguf else ""),
                  str(art.out_dir))
    ui.out.print(table)
    if served:
        side = Table(title="the same email, answered by llama-server", show_lines=True)
        side.add_column("base model (LoRA off)")
        side.add_column("Dana's voice (LoRA on)")
        side.add_row(served["base"], served["tuned"])
        ui.out.print(side)
        ui.out.print(f"serve it yourself: {served['command']}")
    ui.out.print(f"total {time.time() - t0:.0f}s; serve it with: ollama create {art.model_name} -f {art.modelfile}"
                 if not gguf else f"total {time.time() - t0:.0f}s; push it to Ollama with: "
                 f"mailvoice deploy --model {result.final_dir} --user-id {DEMO_USER} --ollama-url http://127.0.0.1:11434")
    return {
        "workspace": str(space.root),
        "data": str(space.data),
        "final": str(result.final_dir),
        "eval": str(ev.results_path),
        "deploy": str(art.out_dir),
        "gguf": str(gguf) if gguf else None,
        "served": served,
        "metrics": ev.metrics,
        "timings": timings,
    }
