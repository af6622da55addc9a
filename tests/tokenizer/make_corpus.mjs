// Writes corpus.json: the texts the tokenizer reference test encodes and decodes with every
// vocabulary (tests/unit/tokenizer_reference_test.cc, reference outputs from reference.mjs).
// Deterministic: rerun with `node tests/tokenizer/make_corpus.mjs` after editing the lists below.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const short = [
  // Empty, whitespace only, single characters.
  "", " ", "  ", "\t", "\n", "\r\n", "a", "A", "1", ".", "é",
  // Latin with accents, mixed case, contractions.
  "Hello, world!",
  "The quick brown fox jumps over the lazy dog.",
  "naïve café, façade, jalapeño, Ångström, Æsir, œuvre, straße, Łódź",
  "I'm sure you'll see it's fine; they've said we're done, he'd go and I won't, can't, don't.",
  "SHOUTING CASE and camelCaseIdentifiers and snake_case_names and MiXeD CaSe",
  "IT'S THEY'LL WE'VE I'M SHE'D DON'T",
  // Other scripts.
  "Привет, мир! Съешь же ещё этих мягких французских булок.",
  "Γειά σου Κόσμε! Ξεσκεπάζω την ψυχοφθόρα βδελυγμία.",
  "مرحبا بالعالم! هذا نص عربي للاختبار.",
  "שלום עולם! זהו טקסט בעברית.",
  "नमस्ते दुनिया! यह हिंदी पाठ है।",
  "你好，世界！这是一个中文测试句子。我们正在测试分词器。",
  "こんにちは世界！これは日本語のテストです。カタカナとひらがな。",
  "안녕하세요 세계! 이것은 한국어 테스트입니다.",
  "สวัสดีชาวโลก นี่คือข้อความภาษาไทย",
  "Mixed: English, русский, 中文, العربية, हिन्दी, 日本語 and 한국어 in one line.",
  // Unicode normalization: a decomposed e + combining acute, Hangul jamo, a ligature.
  "cafe\u0301 and re\u0301sume\u0301, \u1100\u1161\u11a8, \ufb01le",
  // Emoji: plain, ZWJ sequences, skin tones, flags, keycaps.
  "I ❤️ emoji 😀😃😄 👍🏽",
  "Family: 👨‍👩‍👧‍👦, technologist: 👩🏿‍💻, rainbow flag: 🏳️‍🌈",
  "Flags: 🇺🇸🇫🇷🇯🇵🇩🇪 and keycaps 1️⃣2️⃣#️⃣",
  "🤖🚀✨🔥💯",
  // Code.
  "def main():\n    return 0\n",
  "import numpy as np\n\nclass Foo(object):\n    def __init__(self, x: int = 3) -> None:\n        self.x = x ** 2  # square\n\n    def __repr__(self):\n        return f\"Foo({self.x!r})\"\n",
  "#include <vector>\n\ntemplate <typename T>\nT sum(const std::vector<T>& v) {\n\tT s{};\n\tfor (auto& x : v) s += x;\n\treturn s;\n}\n",
  "{\"name\": \"msinfer\", \"version\": [0, 1, 0], \"nested\": {\"ok\": true, \"pi\": 3.14159, \"list\": [\"a\", \"b\"]}}",
  "SELECT id, name FROM users WHERE age >= 21 AND name LIKE '%son' ORDER BY id DESC;",
  "<html><body><p class=\"x\">Hi &amp; bye</p></body></html>",
  // Whitespace runs.
  "a  b   c    d     e",
  "trailing spaces   ",
  "   leading spaces",
  "tabs\there\t\tand\t\t\tthere",
  "lines\nand\n\nmore\n\n\nlines\n",
  "windows\r\nline\r\nendings\r\n",
  "mixed \t \n \r\n  whitespace \u00a0 nbsp \u3000 ideographic",
  "\n\n\n   \n\t\n",
  // Numbers.
  "1234567890 12 123 1234 12345 123456",
  "3.14159 2.71828 -42 +7 1e10 0x1F 1,000,000 50% $19.99 €5",
  "Phone: +1 (555) 123-4567, date 2024-01-31T12:34:56Z",
  "٣١٤ ١٢٣ and ४२ and ５６７",
  // Special tokens of the vocabularies embedded in text, and near-misses.
  "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n",
  "<|im_start|>system\nYou are helpful.<|im_end|>",
  "<s>[INST] What is 2+2? [/INST] 4</s>",
  "<s> leading space after bos</s> trailing",
  "text<s>inside</s>text",
  "<｜begin▁of▁sentence｜>Hello<｜end▁of▁sentence｜>",
  "<｜User｜>Hi<｜Assistant｜>Hello",
  "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
  "<|startoftext|><|start|>user<|message|>Hi<|end|><|return|>",
  "<|endoftext|>",
  "<think>\nreasoning\n</think>\n\nanswer",
  "< s> <s > <\\s> </ s> <|im_start> |im_start|> <|im_start|",
  "<unk> <pad> <mask> [CLS] [SEP]",
  "<0x41> <0xE4> ▁ Ġ Ċ",
  // Punctuation and symbols.
  "Hello , world . How are you ? Fine ! Yes , it 's ok n't",
  "\"Quotes\" and 'single' and «guillemets» and „German“ and 「Japanese」",
  "... --- !!! ??? *** ### @@@ $$$ %%% ^^^ &&& ((( ))) [[[ ]]] {{{ }}}",
  "math: ∀x∈ℝ, x² ≥ 0; ∑ᵢ aᵢ = ∫f(x)dx ≈ π ≠ ∞",
  "control\u0001chars\u0007and\u001bescape\u007fdel",
  "zero\u200bwidth\u200cjoiners\u200dand\ufeffbom",
  "private use \ue000 and supplementary 𝕳𝖊𝖑𝖑𝖔 𐍈 and rare 𠀀",
];

// Long inputs: deterministic mixes of the short ones (a linear congruential generator).
function long_text(seed, n_bytes) {
  let state = seed >>> 0;
  const next = () => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0);
  let out = "";
  while (Buffer.byteLength(out) < n_bytes) {
    out += short[next() % short.length];
    out += [" ", "\n", "", "  ", "\t"][next() % 5];
  }
  return out;
}

const corpus = [
  ...short,
  long_text(1, 20000),
  long_text(2, 20000),
  "word ".repeat(4000),
  "a".repeat(5000),
  " ".repeat(3000),
  "😀".repeat(1000),
];
const here = path.dirname(fileURLToPath(import.meta.url));
fs.writeFileSync(path.join(here, "corpus.json"), JSON.stringify(corpus, null, 1) + "\n");
console.log(`corpus.json: ${corpus.length} texts`);
