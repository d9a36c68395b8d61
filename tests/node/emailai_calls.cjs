// EmailAI's AI calls made the way the app makes them, with the packages it ships
// (ai@4.3.6, ollama-ai-provider@1.2.0, zod@3.24.2; calldatasystems/emailai apps/web/package.json).
// Ours, written from the app's code structure (apps/web/utils/llms/model.ts: createOllama({ baseURL:
// OLLAMA_BASE_URL })(NEXT_PUBLIC_OLLAMA_MODEL); apps/web/utils/llms/index.ts: chatCompletionObject →
// generateObject, chatCompletion → generateText, chatCompletionStream → streamText); no app code.
//
// Reads one JSON object on stdin: {baseURL, model, draft, unknownDraft, nudge, rules, stream: {system,
// prompt}, structured?: [call names]} (the prompt texts come from the test); writes one JSON object
// with each call's result (or its error) on stdout. The app creates its model without settings (json
// mode: format "json", the schema written into the system text); a call named in `structured` uses
// ollama-ai-provider's structuredOutputs instead (format = the schema), for a tiny base model that
// cannot follow a schema given only as text.
"use strict";
const path = require("node:path");
const { createRequire } = require("node:module");

const dir = process.env.MAILVOICE_NPM_EMAILAI;
if (!dir) {
  console.error("MAILVOICE_NPM_EMAILAI is not set");
  process.exit(2);
}
const req = createRequire(path.join(dir, "package.json"));
const { generateObject, generateText, streamText } = req("ai");
const { createOllama } = req("ollama-ai-provider");
const { z } = req("zod");

// the draft's zod schema (draft-with-knowledge.ts draftSchema) and rule matching's (ai-choose-rule.ts);
// `max` (only for the `structured` calls, see above) bounds each string so a tiny model's answer
// closes within its token budget (llama.cpp's grammar honours maxLength)
const str = (max) => (max ? z.string().max(max) : z.string());
const draftSchemaOf = (max) =>
  z.object({
    reply: str(max).describe("The complete email reply draft incorporating knowledge base information"),
  });
const ruleSchemaOf = (max) =>
  z.object({
    reason: str(max),
    ruleName: str(max),
    noMatchFound: z.boolean().optional(),
  });

async function attempt(fn) {
  try {
    return { ok: true, ...(await fn()) };
  } catch (e) {
    return { ok: false, error: `${e && e.name}: ${String((e && e.message) || e).slice(0, 300)}` };
  }
}

async function main() {
  let input = "";
  for await (const chunk of process.stdin) input += chunk;
  const spec = JSON.parse(input);
  const ollama = createOllama({ baseURL: spec.baseURL });
  const model = ollama(spec.model);
  const structured = new Set(spec.structured || []);
  const modelFor = (call) => (structured.has(call) ? ollama(spec.model, { structuredOutputs: true }) : model);
  const maxFor = (call) => (structured.has(call) ? spec.maxStringLength : undefined);
  const common = { maxRetries: 0, temperature: 0 };
  const out = {};
  out.draft = await attempt(async () => {
    const r = await generateObject({ model: modelFor("draft"), system: spec.draft.system, prompt: spec.draft.prompt, schema: draftSchemaOf(maxFor("draft")), ...common });
    return { object: r.object };
  });
  out.rules = await attempt(async () => {
    const r = await generateObject({
      model: modelFor("rules"),
      messages: [
        { role: "system", content: spec.rules.system },
        { role: "user", content: spec.rules.prompt },
      ],
      schema: ruleSchemaOf(maxFor("rules")),
      ...common,
    });
    return { object: r.object };
  });
  out.nudge = await attempt(async () => {
    const r = await generateText({ model, system: spec.nudge.system, prompt: spec.nudge.prompt, ...common });
    return { text: r.text };
  });
  out.stream = await attempt(async () => {
    let failed = null;
    const r = streamText({
      model, system: spec.stream.system, prompt: spec.stream.prompt, ...common,
      onError: ({ error }) => { failed = error; },
    });
    let text = "";
    let pieces = 0;
    for await (const piece of r.textStream) {
      text += piece;
      pieces += 1;
    }
    if (failed) throw failed;
    return { text, pieces };
  });
  out.unknownDraft = await attempt(async () => {
    const r = await generateObject({ model: modelFor("unknownDraft"), system: spec.unknownDraft.system, prompt: spec.unknownDraft.prompt, schema: draftSchemaOf(maxFor("unknownDraft")), ...common });
    return { object: r.object };
  });
  process.stdout.write(JSON.stringify(out));
}

main().catch((e) => {
  console.error(`emailai_calls: ${e && e.message}`);
  process.exit(1);
});
