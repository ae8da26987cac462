// LoRA adapters as model ids: `--lora NAME=FILE[:SCALE]` lists each adapter in
// /v1/models next to the base; a request's `model` picks base or adapter;
// requests for different models run concurrently in one continuous batch and
// each gets exactly what it gets alone (greedy), streamed or not.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { getJSON, tempDir, withServer } from './serve_helpers.mjs';

// stories260K's projections (out, in): dim 64, 4 kv heads of 8, hidden 172, 5 layers.
const SHAPES = {
  q_proj: [64, 64], k_proj: [32, 64], v_proj: [32, 64], o_proj: [64, 64],
  gate_proj: [172, 64], up_proj: [172, 64], down_proj: [64, 172],
};

// A Hugging Face PEFT adapter folder (adapter_config.json + adapter_model.safetensors)
// with deterministic values uniform in +-amp, written here so no binary lives in the repo.
function writePeftAdapter(dir, seed, { rank = 4, alpha = 8, amp = 0.2 } = {}) {
  mkdirSync(dir, { recursive: true });
  let s = seed >>> 0 || 1;
  const next = () => { // xorshift32
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return (s / 4294967296) * 2 - 1;
  };
  const header = {};
  const blobs = [];
  let off = 0;
  for (let l = 0; l < 5; l++) {
    for (const [mod, [out, inp]] of Object.entries(SHAPES)) {
      const group = ['q_proj', 'k_proj', 'v_proj', 'o_proj'].includes(mod) ? 'self_attn' : 'mlp';
      for (const [ab, shape] of [['A', [rank, inp]], ['B', [out, rank]]]) {
        const v = new Float32Array(shape[0] * shape[1]).map(() => next() * amp);
        const name = `base_model.model.model.layers.${l}.${group}.${mod}.lora_${ab}.weight`;
        header[name] = { dtype: 'F32', shape, data_offsets: [off, off + v.byteLength] };
        blobs.push(Buffer.from(v.buffer));
        off += v.byteLength;
      }
    }
  }
  let h = JSON.stringify(header);
  h += ' '.repeat((8 - (h.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  writeFileSync(path.join(dir, 'adapter_model.safetensors'), Buffer.concat([len, Buffer.from(h), ...blobs]));
  writeFileSync(path.join(dir, 'adapter_config.json'), JSON.stringify({
    peft_type: 'LORA', task_type: 'CAUSAL_LM', r: rank, lora_alpha: alpha, lora_dropout: 0, bias: 'none',
    target_modules: Object.keys(SHAPES), base_model_name_or_path: 'stories260K',
  }));
  return dir;
}

const dir = tempDir('lgpu-serve-lora-');
const STORY = writePeftAdapter(path.join(dir, 'story'), 11);
const WILD = writePeftAdapter(path.join(dir, 'wild'), 22, { rank: 2, alpha: 2, amp: 0.3 });
const ARGS = ['--parallel', '6', '--lora', `story=${STORY}`, '--lora', `wild=${WILD}:0.5`];

const ask = (model, content) => ({
  model, messages: [{ role: 'user', content }], max_tokens: 20, temperature: 0,
});

async function chat(client, req, stream) {
  if (!stream) {
    const r = await client.chat.completions.create(req);
    return { model: r.model, text: r.choices[0].message.content, usage: r.usage };
  }
  let text = '', model = '', usage = null;
  const chunks = await client.chat.completions.create({ ...req, stream: true, stream_options: { include_usage: true } });
  for await (const c of chunks) {
    model = c.model;
    text += c.choices[0]?.delta?.content ?? '';
    if (c.usage) usage = c.usage;
  }
  return { model, text, usage };
}

test('each --lora adapter is a model id next to the base', async () => {
  await withServer(ARGS, async (s) => {
    const models = await s.client.models.list();
    assert.deepEqual(models.data.map((m) => m.id), ['stories260K', 'story', 'wild']);
    const story = await s.client.models.retrieve('story');
    assert.equal(story.id, 'story');
    assert.equal(story.parent, 'stories260K');
    await assert.rejects(s.client.models.retrieve('nope'), (e) => e.status === 404);
    // unknown model: the OpenAI-style 404 the server uses for any unknown id
    await assert.rejects(s.client.chat.completions.create(ask('stories-9000', 'Hi')), (e) => {
      assert.equal(e.status, 404);
      assert.equal(e.code, 'model_not_found');
      assert.equal(e.param, 'model');
      assert.match(e.message, /'story'/);
      return true;
    });
    // the native listing describes the adapters
    const native = await getJSON(`${s.url}/models`);
    const wild = native.json.models.find((m) => m.name === 'wild');
    assert.equal(wild.base, 'stories260K');
    assert.equal(wild.rank, 2);
    assert.equal(wild.scale, 0.5);
  });
});

test('base and adapters answer concurrently in one batch, as each does alone, streamed or not', async () => {
  await withServer(ARGS, async (s) => {
    const cases = [
      ['stories260K', 'Tell me a story', false], ['story', 'Tell me a story', false],
      ['story', 'Tell me a story', true], ['wild', 'Tell me a story', true],
      ['stories260K', 'A story about a dog', true], ['wild', 'A story about a dog', false],
    ];
    const alone = [];
    for (const [m, p, st] of cases) alone.push(await chat(s.client, ask(m, p), st));
    // the adapters change the text
    assert.notEqual(alone[1].text, alone[0].text);
    assert.notEqual(alone[3].text, alone[0].text);
    assert.notEqual(alone[3].text, alone[1].text);
    // stream and non-stream agree
    assert.equal(alone[2].text, alone[1].text);
    for (let i = 0; i < cases.length; i++) assert.equal(alone[i].model, cases[i][0], `case ${i} echoes its model`);
    // a base request's cached prompt is not reused by an adapter's (other weights)
    const again = await chat(s.client, ask('story', 'A story about a dog'), false);
    assert.equal(again.usage.prompt_tokens_details.cached_tokens, 0);

    const stepsBefore = (await getJSON(`${s.url}/status`)).json.engine.steps;
    const together = await Promise.all(cases.map(([m, p, st]) => chat(s.client, ask(m, p), st)));
    const steps = (await getJSON(`${s.url}/status`)).json.engine.steps - stepsBefore;
    for (let i = 0; i < cases.length; i++) {
      assert.equal(together[i].text, alone[i].text, `case ${i} (${cases[i][0]})`);
      assert.equal(together[i].model, cases[i][0]);
    }
    // one continuous batch: far fewer steps than the requests' tokens one by one
    const tokens = alone.reduce((a, r) => a + r.usage.completion_tokens, 0);
    assert.ok(steps < tokens / 2, `${steps} engine steps for ${tokens} tokens of ${cases.length} requests`);
  });
});
