// Talks to a running `msinfer serve` with the official `openai` client library (pinned in
// tests/npm, installed into .deps/npm by scripts/fetch-test-deps.sh): completions and chat,
// streaming and not, greedy. Prints one JSON object with what the client saw, for the C++ test
// to compare with the fixture's references.
//
//   node tests/e2e/openai_client.mjs PORT REFERENCE_JSON MODEL
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const deps = path.join(here, "../../.deps/npm/package.json");
if (!fs.existsSync(deps)) {
  console.error("openai_client.mjs: .deps/npm is missing; run scripts/fetch-test-deps.sh");
  process.exit(2);
}
const require = createRequire(deps);
const OpenAIModule = require("openai");
const OpenAI = OpenAIModule.default ?? OpenAIModule.OpenAI ?? OpenAIModule;

const [port, referencePath, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: "unused", maxRetries: 0, timeout: 60000 });
const reference = JSON.parse(fs.readFileSync(referencePath, "utf8"));

const results = [];
for (const c of reference.cases) {
  const r = { kind: c.kind };
  if (c.kind === "text") {
    const whole = await client.completions.create({ model, prompt: c.prompt_ids, max_tokens: 10, temperature: 0 });
    r.text = whole.choices[0].text;
    r.finish_reason = whole.choices[0].finish_reason;
    r.usage = whole.usage;
    const stream = await client.completions.create({
      model, prompt: c.prompt_ids, max_tokens: 10, temperature: 0, stream: true, stream_options: { include_usage: true },
    });
    r.stream_text = "";
    for await (const chunk of stream) {
      if (chunk.choices.length > 0) r.stream_text += chunk.choices[0].text;
      if (chunk.usage) r.stream_usage = chunk.usage;
    }
  } else {
    const whole = await client.chat.completions.create({ model, messages: c.prompt, max_tokens: 10, temperature: 0 });
    r.text = whole.choices[0].message.content;
    r.role = whole.choices[0].message.role;
    r.finish_reason = whole.choices[0].finish_reason;
    r.usage = whole.usage;
    const stream = await client.chat.completions.create({
      model, messages: c.prompt, max_tokens: 10, temperature: 0, stream: true, stream_options: { include_usage: true },
    });
    r.stream_text = "";
    for await (const chunk of stream) {
      if (chunk.choices.length > 0 && chunk.choices[0].delta.content) r.stream_text += chunk.choices[0].delta.content;
      if (chunk.choices.length > 0 && chunk.choices[0].delta.role) r.stream_role = chunk.choices[0].delta.role;
      if (chunk.usage) r.stream_usage = chunk.usage;
    }
  }
  results.push(r);
}
// An error object the client library understands.
try {
  await client.completions.create({ model: "no-such-model", prompt: "hi", max_tokens: 1 });
  results.push({ kind: "error", status: 200 });
} catch (e) {
  results.push({ kind: "error", status: e.status, message: e.message });
}
const models = await client.models.list();
console.log(JSON.stringify({ results, models: models.data.map((m) => m.id) }));
