// Reference outputs of Hugging Face's JS tokenizer engine (@huggingface/tokenizers, installed in
// .deps/npm by scripts/fetch-test-deps.sh) for every text of a corpus, as JSON on stdout:
//   {"ids_with_special": [[...], ...], "ids_without": [[...], ...],
//    "decoded": [...], "decoded_skip": [...]}
// where decoded[i] = decode(ids_with_special[i]) and decoded_skip[i] the same with
// skip_special_tokens. Usage: node reference.mjs TOKENIZER_DIR CORPUS_JSON
//
// clean_up_tokenization_spaces follows transformers: tokenizer_config.json's value, false when
// absent (the JS engine alone would default to true).
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const engine = path.join(here, "../../.deps/npm/node_modules/@huggingface/tokenizers/dist/tokenizers.mjs");
if (!fs.existsSync(engine)) {
  console.error(`reference.mjs: ${engine} is missing; run scripts/fetch-test-deps.sh`);
  process.exit(2);
}
const { Tokenizer } = await import(pathToFileURL(engine).href);

const [dir, corpus_path] = process.argv.slice(2);
if (!dir || !corpus_path) {
  console.error("usage: node reference.mjs TOKENIZER_DIR CORPUS_JSON");
  process.exit(2);
}
const read_json = (p) => JSON.parse(fs.readFileSync(p, "utf8"));
const config_path = path.join(dir, "tokenizer_config.json");
const config = fs.existsSync(config_path) ? read_json(config_path) : {};
const tokenizer = new Tokenizer(read_json(path.join(dir, "tokenizer.json")), config);
const clean_up = config.clean_up_tokenization_spaces ?? false;
const decode = (ids, skip) =>
  ids.length === 0  // the JS engine rejects an empty list
    ? ""
    : tokenizer.decode(ids, { skip_special_tokens: skip, clean_up_tokenization_spaces: clean_up });

const out = { ids_with_special: [], ids_without: [], decoded: [], decoded_skip: [] };
for (const text of read_json(corpus_path)) {
  const with_special = tokenizer.encode(text, { add_special_tokens: true }).ids;
  out.ids_with_special.push(with_special);
  out.ids_without.push(tokenizer.encode(text, { add_special_tokens: false }).ids);
  out.decoded.push(decode(with_special, false));
  out.decoded_skip.push(decode(with_special, true));
}
process.stdout.write(JSON.stringify(out));
