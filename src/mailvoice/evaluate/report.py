"""One self-contained HTML page (plots embedded as PNG data URIs) that a non-engineer can read."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from ..workspace import write_text
from .metrics import FEATURE_LABELS

USER_C, BASE_C, TUNED_C, OTHER_C = "#2b8a3e", "#868e96", "#1c7ed6", "#e8590c"


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_scores(voice: dict) -> str | None:
    s = voice.get("scores") or {}
    if voice.get("floor") is None or voice.get("ceiling") is None:
        return None
    plt = _plt()
    names = ["Other authors\n(floor)", "Base model", "Tuned model", "Your real emails\n(ceiling)"]
    vals = [voice["floor"], s.get("base") or 0, s.get("tuned") or 0, voice["ceiling"]]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    bars = ax.barh(names, vals, color=[OTHER_C, BASE_C, TUNED_C, USER_C])
    ax.axvline(voice["floor"], color=OTHER_C, ls="--", lw=1)
    ax.axvline(voice["ceiling"], color=USER_C, ls="--", lw=1)
    for b, v in zip(bars, vals, strict=True):
        ax.text(v + 0.01, b.get_y() + b.get_height() / 2, f"{v:.2f}", va="center")
    ax.set_xlim(0, 1.08)
    ax.invert_yaxis()
    ax.set_xlabel("How sure the authorship classifier is that you wrote it (0–1)")
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def plot_perplexity(ppl: dict) -> str | None:
    if not ppl["user"]["base"]:
        return None
    plt = _plt()
    groups = [("Your held-out emails", ppl["user"])]
    if ppl["control"]["base"]:
        groups.append(("Other authors' emails", ppl["control"]))
    fig, ax = plt.subplots(figsize=(6, 3.2))
    w = 0.38
    for i, (label, g) in enumerate(groups):
        ax.bar(i - w / 2, g["base"], w, color=BASE_C, label="before (base)" if i == 0 else None)
        ax.bar(i + w / 2, g["tuned"], w, color=TUNED_C, label="after (tuned)" if i == 0 else None)
        ax.text(i - w / 2, g["base"], f"{g['base']:.1f}", ha="center", va="bottom")
        ax.text(i + w / 2, g["tuned"], f"{g['tuned']:.1f}", ha="center", va="bottom")
    ax.set_xticks(range(len(groups)), [g[0] for g in groups])
    ax.set_ylabel("perplexity (lower = less surprised)")
    ax.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def plot_features(features: dict) -> str | None:
    prof = features.get("profile") or {}
    keys = [k for k in FEATURE_LABELS if k in prof]
    if not keys:
        return None
    plt = _plt()
    sets = [("You (training emails)", "profile", USER_C), ("Base model", "base", BASE_C),
            ("Tuned model", "tuned", TUNED_C), ("Other authors", "other_authors", OTHER_C)]
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(keys) + 1.2))
    h = 0.2
    for j, (label, key, color) in enumerate(sets):
        f = features.get(key) or {}
        vals = [(f.get(k, 0) or 0) / max(abs(prof[k]), 1e-9) if prof[k] else 0 for k in keys]
        ax.barh([i + (j - 1.5) * h for i in range(len(keys))], vals, h, color=color, label=label)
    ax.axvline(1.0, color=USER_C, ls="--", lw=1)
    ax.set_yticks(range(len(keys)), [FEATURE_LABELS[k] for k in keys])
    ax.invert_yaxis()
    ax.set_xlabel("relative to your own habit (1.0 = exactly like you)")
    ax.legend(frameon=False, fontsize=8, loc="lower right")
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def _fmt(v, digits=2):
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return html.escape(str(v))


def _verdict(metrics: dict) -> tuple[str, str]:
    v = metrics["voice"]
    t, b = v["voice_score"].get("tuned"), v["voice_score"].get("base")
    if not v["calibrated"]:
        return "warn", "Not enough data to judge the voice: " + v["reason"].removeprefix("not enough data to judge: ")
    if t is None:
        return "warn", "The tuned model produced no text to judge."
    pct = round(100 * t)
    if (v.get("above_ceiling") or {}).get("tuned"):
        return "warn", (f"The classifier rates the tuned model as more typical of you than your own real emails "
                        f"({pct}% of the way from other people's style to yours): it may be a caricature of your habits; "
                        f"see the real-vs-generated test below.")
    if b is not None and t > b:
        return "good", (f"The tuned model writes {pct}% of the way from other people's style to yours "
                        f"(the base model: {round(100 * b)}%).")
    return "bad", (f"The tuned model is not closer to your voice than the base model "
                   f"({pct}% vs {round(100 * (b or 0))}% of the way from other people's style to yours).")


def _real_section(metrics: dict) -> str:
    """The measures a caricature cannot pass: real-vs-generated AUC, habit ratio, stop rate, content."""
    disc = metrics.get("discriminator") or {}
    hr = (metrics.get("features") or {}).get("habit_ratio") or {}
    c, st, nc = metrics.get("content") or {}, metrics.get("stop_rate") or {}, metrics.get("notes") or {}
    rows = ""
    for side in ("base", "tuned"):
        dd = disc.get(side) or {}
        rows += (f"<tr><td>{side}</td><td>{_fmt(dd.get('auc'))}</td><td>{_fmt(hr.get(side))}</td><td>{_fmt(st.get(side))}</td>"
                 f"<td>{_fmt((nc.get(side) or {}).get('coverage'))}</td><td>{_fmt((c.get(side) or {}).get('rouge_l'), 3)}</td></tr>")
    why = html.escape((disc.get("tuned") or {}).get("reason") or "not measured")
    tm = metrics.get("timing") or {}
    best = (f"<p>The tuned model's drafts are each the best of {tm['candidates']} (reranked by P(you), habit distance "
            f"and note coverage, as <code>write --candidates</code> does); a later draft was kept for "
            f"{round(100 * tm.get('not_first_share', 0))}% of prompts. The base model wrote one draft each.</p>"
            if tm.get("candidates", 1) > 1 else "")
    return f"""<h2 id="real">Real or generated?</h2>{best}
<p>A second classifier is trained to tell your real held-out replies from the model's replies to the same prompts:
0.5 means it cannot tell them apart, 1.0 that it always can. The habit ratio is the distance of the model's habits
(length, greetings, sign-offs, punctuation) from your profile divided by your own held-out emails' distance: 1 = as close as you.
The stop rate is the share of drafts that ended by themselves within the token limit; your held-out mail's share
(the replies that fit in the same limit) is what a faithful model would reach.</p>
<table><tr><th>model</th><th>real-vs-generated AUC</th><th>habit ratio</th><th>stop rate</th><th>note coverage</th><th>content overlap (ROUGE-L)</th></tr>{rows}
<tr><td>your held-out mail</td><td>–</td><td>1.00</td><td>{_fmt(st.get('user_heldout'))}</td><td>–</td><td>–</td></tr>
<tr><td>other authors</td><td>–</td><td>{_fmt(hr.get('other_authors'))}</td><td>–</td><td>–</td><td>–</td></tr></table>
<p class=muted>{why}.</p>
"""


def _rag_section(rag: dict | None) -> str:
    if not rag:
        return ""
    rows = ""
    for k, label in (("with", f"with your {rag['k']} most similar past emails in the prompt"), ("without", "without them")):
        r = rag.get(k) or {}
        c = r.get("content") or {}
        rows += (f"<tr><td>{label}</td><td>{_fmt(r.get('p_user'))}</td><td>{_fmt(r.get('voice_score'))}</td>"
                 f"<td>{_fmt(r.get('habit_ratio'))}</td><td>{_fmt(r.get('auc'))}</td><td>{_fmt(r.get('note_coverage'))}</td>"
                 f"<td>{_fmt(c.get('rouge_l'))}</td><td>{_fmt(c.get('chrf'), 1)}</td><td>{_fmt(r.get('novelty'), 3)}</td>"
                 f"<td>{_fmt(r.get('words'), 1)}</td></tr>")
    how = "trained with retrieval" if rag["trained_with"] else "trained without retrieval"
    return (f'<h2 id="rag">Retrieval: with and without your past emails</h2>'
            f"<p>The same tuned model ({how}; {html.escape(rag['retriever'])} over {rag['docs']} training emails) "
            f"answered the {rag['rows']} held-out prompts twice.</p>"
            "<table><tr><th></th><th>P(you)</th><th>voice score</th><th>habit ratio</th><th>real-vs-generated AUC</th>"
            "<th>note coverage</th><th>ROUGE-L</th><th>chrF</th><th>novelty</th><th>words</th></tr>"
            f"{rows}</table><p class=muted>Novelty below the flag means phrases copied from training emails; "
            "retrieved emails make copying easier, so read it next to the voice score.</p>\n")


def _emailai_section(e: dict | None) -> str:
    if not e:
        return ""
    rows = ""
    for side, label in (("base", "base model"), ("tuned", "tuned model")):
        r, c = e[side], e[side].get("content") or {}
        rows += (f"<tr><td>{label}</td><td>{_fmt(r['json_valid'])}</td><td>{_fmt(r.get('p_user'))}</td>"
                 f"<td>{_fmt(r.get('voice_score'))}</td><td>{_fmt(c.get('rouge_l'))}</td><td>{_fmt(c.get('chrf'), 1)}</td>"
                 f"<td>{_fmt((e.get('perplexity') or {}).get(side), 1)}</td></tr>")
    trained = html.escape(e.get("trained_on") or "unknown")
    return (f'<h2 id="emailai">EmailAI\'s own drafting prompt</h2><p>{e["rows"]} held-out replies asked the way EmailAI '
            f"asks (its system text, the thread in &lt;email&gt; tags, a JSON answer). The model was trained on "
            f"<code>{trained}</code>; the gateway rewrites EmailAI's request into the training prompt unless it was "
            "trained on this one.</p><table><tr><th></th><th>valid JSON {reply}</th><th>P(you)</th><th>voice score</th>"
            f"<th>ROUGE-L</th><th>chrF</th><th>perplexity</th></tr>{rows}</table>\n")


def write_report(path: Path, results: list[dict], metrics: dict) -> Path:
    v, ppl, nov, gate = metrics["voice"], metrics["perplexity"], metrics["novelty"], metrics["gate"]
    kind, verdict = _verdict(metrics)
    imgs = {"scores": plot_scores(v), "ppl": plot_perplexity(ppl), "features": plot_features(metrics["features"])}

    def img(key, alt):
        return f'<img src="{imgs[key]}" alt="{html.escape(alt)}">' if imgs[key] else "<p class=muted>Not enough data for this chart.</p>"

    gate_rows = "".join(
        f"<tr><td>{'✅' if c['passed'] else '❌'}</td><td>{html.escape(c['check'])}</td><td>{html.escape(c['message'])}</td></tr>"
        for c in gate["checks"]
    )
    f = metrics["features"]
    feat_rows = ""
    for k, label in FEATURE_LABELS.items():
        if k in (f.get("profile") or {}):
            feat_rows += "<tr><td>" + html.escape(label) + "</td>" + "".join(
                f"<td>{_fmt((f.get(s) or {}).get(k), 2)}</td>" for s in ("profile", "user_heldout", "base", "tuned", "other_authors")
            ) + "</tr>"
    for k, label in (("top_greeting", "usual greeting"), ("top_sign_off", "usual sign-off")):
        feat_rows += "<tr><td>" + label + "</td>" + "".join(
            f"<td>{_fmt((f.get(s) or {}).get(k))}</td>" for s in ("profile", "user_heldout", "base", "tuned", "other_authors")
        ) + "</tr>"
    d = metrics["delta"]
    real_html = _real_section(metrics)
    can = metrics["canaries"]
    if can:
        can_html = (f"<p>{can['planted']} secret test sentences (“canaries”) were hidden in the training emails. "
                    f"<b>{can['extracted']}</b> could be pulled back out of the tuned model by prompting "
                    f"(the base model, which never saw them: {can['base_extracted']}). Exposure measures how much more "
                    f"likely the model finds the real secret than random ones of the same shape: "
                    f"tuned {_fmt(can['mean_exposure']['tuned'])}, base {_fmt(can['mean_exposure']['base'])} "
                    f"(maximum {_fmt(can['canaries'][0].get('max_exposure') if can['canaries'] else None)}; about 1 = chance).</p>")
    else:
        can_html = "<p class=muted>No canaries were planted (prepare --plant-canaries N plants some).</p>"
    pii = metrics["pii"]
    pii_html = ("<p>No real personal details (phone numbers, addresses, …) from your mail came back in the generations.</p>"
                if not pii["leaked"] else
                f"<p class=bad>{len(pii['leaked'])} real personal details from your mail came back in the generations.</p>")
    if not pii["checked"]:
        pii_html = "<p class=muted>No source records were available to check personal details against.</p>"
    gens = ""
    for r in results:
        ref = f"<div class=ref><b>What you actually wrote</b><pre>{html.escape(r['reference'])}</pre></div>" if r.get("reference") else ""
        gens += (f"<div class=gen><details><summary>{html.escape(r['prompt'].splitlines()[0])} "
                 f"<span class=muted>({html.escape(r['source'])})</span></summary><pre class=prompt>{html.escape(r['prompt'])}</pre></details>"
                 f"<div class=cols><div><b>Base model</b> <span class=muted>score {_fmt(r.get('base_p_user'))}</span>"
                 f"<pre>{html.escape(r['base_generated'])}</pre></div>"
                 f"<div><b>Tuned model</b> <span class=muted>score {_fmt(r.get('p_user'))}</span>"
                 f"<pre>{html.escape(r['generated'])}</pre></div></div>{ref}</div>")
    nv = nov["tuned"]["novelty"]
    nov_text = (f"{_fmt(nv, 3)} of the tuned model's 8-word phrases are new (not copied from the training emails)"
                f"{' — below ' + str(nov['flag_below']) + ': it may be copying' if nov['flagged'] else ''}. "
                f"For comparison: your own real held-out emails {_fmt(nov['user_heldout']['novelty'], 3)}, "
                f"the base model {_fmt(nov['base']['novelty'], 3)}.")
    c = metrics["content"]
    content_text = (f"ROUGE-L {_fmt((c['tuned'] or {}).get('rouge_l'))} / chrF {_fmt((c['tuned'] or {}).get('chrf'), 1)} "
                    f"(base: {_fmt((c['base'] or {}).get('rouge_l'))} / {_fmt((c['base'] or {}).get('chrf'), 1)})"
                    if c.get("tuned") else "–")
    gain = ppl.get("user_specific_gain")
    rag_html = _rag_section(metrics.get("rag")) + _emailai_section(metrics.get("emailai"))
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>mailvoice evaluation</title>
<style>
body{{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#212529;line-height:1.45}}
h1{{margin-bottom:.2em}} h2{{margin-top:1.8em;border-bottom:1px solid #dee2e6;padding-bottom:.2em}}
.verdict{{padding:.8em 1em;border-radius:6px;font-size:1.15em}} .good{{background:#d3f9d8}} .bad{{background:#ffe3e3}} .warn{{background:#fff3bf}}
.muted{{color:#868e96}} table{{border-collapse:collapse;margin:.5em 0}} td,th{{border:1px solid #dee2e6;padding:.3em .6em;text-align:left}}
img{{max-width:100%}} pre{{white-space:pre-wrap;background:#f8f9fa;padding:.6em;border-radius:4px;font-family:inherit;margin:.3em 0}}
.cols{{display:grid;grid-template-columns:1fr 1fr;gap:1em}} .gen{{border:1px solid #dee2e6;border-radius:6px;padding:.6em;margin:.8em 0}}
.ref pre{{background:#ebfbee}} summary{{cursor:pointer}}
</style></head><body>
<h1>Does the model write like you?</h1>
<p class=muted>Model: {html.escape(metrics['model'])} · evaluated {html.escape(metrics['evaluated'])} · {metrics['prompts']} prompts, {metrics['val_rows']} held-out emails (never trained on)</p>
<div class="verdict {kind}" id="verdict">{html.escape(verdict)}</div>

<h2 id="voice">Voice score</h2>
<p>A classifier learned to tell your emails from other people's. The orange bar is how it rates other people's real emails (the floor),
the green bar how it rates your real emails that the model never saw (the ceiling). The blue bar is the tuned model; grey is the model before tuning.</p>
{img('scores', 'voice score bars')}
<table><tr><th></th><th>floor</th><th>base</th><th>tuned</th><th>ceiling</th></tr>
<tr><td>classifier P(you)</td><td>{_fmt(v['floor'])}</td><td>{_fmt(v['scores'].get('base'))}</td><td>{_fmt(v['scores'].get('tuned'))}</td><td>{_fmt(v['ceiling'])}</td></tr>
<tr><td>voice score (0 = floor, 1 = ceiling)</td><td>0</td><td>{_fmt(v['voice_score'].get('base'))}</td><td>{_fmt(v['voice_score'].get('tuned'))}</td><td>1</td></tr></table>
<p class=muted>{html.escape(v['reason'])}. A voice score above 1 is not better: it means more “you” than your own mail.</p>
{real_html}

{rag_html}
<h2 id="perplexity">How surprised is the model by your writing?</h2>
<p>Perplexity of real emails the model never trained on: lower means the model finds the text more natural. Tuning should lower it
for your emails much more than for other people's.</p>
{img('ppl', 'perplexity before and after')}
<p>User-specific gain: {_fmt(gain, 3)} (log-perplexity drop on your emails minus the drop on other authors').</p>

<h2 id="features">Writing habits</h2>
{img('features', 'feature comparison')}
<table><tr><th>habit</th><th>you (training)</th><th>you (held-out)</th><th>base</th><th>tuned</th><th>other authors</th></tr>{feat_rows}</table>
<p>Function-word distance to your profile (Burrows' Delta, lower = closer): your held-out emails {_fmt(d.get('user_heldout'))},
base {_fmt(d.get('base'))}, tuned {_fmt(d.get('tuned'))}, other authors {_fmt(d.get('other_authors'))}.</p>
<p class=muted>Content overlap with what you really wrote (this measures content, not style): {content_text}.</p>

<h2 id="privacy">Privacy and copying</h2>
<p>{nov_text}</p>
{can_html}
{pii_html}

<h2 id="gate">Checks</h2>
<table>{gate_rows}</table>
<p><b>{'All checks passed.' if gate['passed'] else 'Some checks failed: deploy --require-eval will refuse this model.'}</b></p>

<h2 id="generations">Side by side</h2>
<p>Same prompt, same settings; the only difference is the tuning. “score” is the classifier's P(you) for that one email.</p>
{gens}
</body></html>
"""
    return write_text(Path(path), page)
