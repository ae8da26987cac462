// lgpu-serve through the official `openai` client: chat and completions,
// streaming and not, n, logprobs, stop, include_usage, seed; plus the native
// endpoints, monitoring and the WebSocket. One server (stories260K) for all.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { getJSON, postJSON, sseEvents, startServer, wsConnect } from './serve_helpers.mjs';

let s;
const MODEL = 'stories260K';
const MSGS = [{ role: 'user', content: 'Tell me a story about a dog.' }];

// Prints the server log when a test fails.
const test = (name, fn) => it(name, async () => {
  try { await fn(); } catch (e) { console.error(`---- lgpu-serve log ----\n${s.log()}`); throw e; }
});

describe('lgpu-serve OpenAI API', () => {
  before(async () => { s = await startServer(['--parallel', '4']); });
  after(async () => {
    const e = await s.stop();
    if (e.code !== 0) console.error(s.log());
    assert.equal(e.code, 0, 'clean exit after SIGTERM');
  });

  test('lists the model', async () => {
    const list = await s.client.models.list();
    assert.deepEqual(list.data.map((m) => m.id), [MODEL]);
    const m = await s.client.models.retrieve(MODEL);
    assert.equal(m.id, MODEL);
  });

  test('chat completion (non-streaming) with usage', async () => {
    const r = await s.client.chat.completions.create({ model: MODEL, messages: MSGS, max_tokens: 12, temperature: 0 });
    assert.equal(r.object, 'chat.completion');
    assert.match(r.id, /^chatcmpl-/);
    assert.equal(r.choices.length, 1);
    assert.equal(r.choices[0].index, 0);
    assert.equal(r.choices[0].message.role, 'assistant');
    assert.ok(r.choices[0].message.content.length > 0);
    assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
    assert.ok(r.usage.prompt_tokens > 5);
    assert.ok(r.usage.completion_tokens >= 1 && r.usage.completion_tokens <= 12);
    assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
    if (r.choices[0].finish_reason === 'length') assert.equal(r.usage.completion_tokens, 12);
  });

  test('chat streaming: role first, content deltas, finish, usage, [DONE]', async () => {
    const ref = await s.client.chat.completions.create({ messages: MSGS, max_tokens: 16, temperature: 0 });
    const stream = await s.client.chat.completions.create({
      messages: MSGS, max_tokens: 16, temperature: 0, stream: true, stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk'));
    assert.equal(chunks[0].choices[0].delta.role, 'assistant');
    const last = chunks[chunks.length - 1];
    assert.deepEqual(last.choices, []);
    assert.equal(last.usage.completion_tokens, ref.usage.completion_tokens);
    assert.equal(last.usage.prompt_tokens, ref.usage.prompt_tokens);
    const finishes = chunks.flatMap((c) => c.choices.filter((ch) => ch.finish_reason));
    assert.equal(finishes.length, 1);
    assert.equal(finishes[0].finish_reason, ref.choices[0].finish_reason);
    const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
    assert.equal(text, ref.choices[0].message.content);
    assert.ok(chunks.filter((c) => c.choices[0]?.delta?.content).length > 1, 'several content deltas');
  });

  test('completions, streaming equals non-streaming', async () => {
    const req = { model: MODEL, prompt: 'Once upon a time', max_tokens: 20, temperature: 0 };
    const r = await s.client.completions.create(req);
    assert.equal(r.object, 'text_completion');
    assert.equal(r.choices[0].finish_reason, 'length');
    assert.equal(r.usage.completion_tokens, 20);
    const stream = await s.client.completions.create({ ...req, stream: true });
    let text = '', finish = null;
    for await (const c of stream) {
      assert.equal(c.object, 'text_completion');
      text += c.choices[0].text;
      finish = c.choices[0].finish_reason ?? finish;
    }
    assert.equal(text, r.choices[0].text);
    assert.equal(finish, 'length');
  });

  test('n=2 gives two indexed choices, in streams too', async () => {
    const r = await s.client.chat.completions.create({ messages: MSGS, max_tokens: 8, n: 2, seed: 7 });
    assert.deepEqual(r.choices.map((c) => c.index), [0, 1]);
    const stream = await s.client.completions.create({ prompt: 'The cat', max_tokens: 8, n: 2, stream: true, seed: 7 });
    const texts = ['', ''];
    for await (const c of stream) for (const ch of c.choices) texts[ch.index] += ch.text;
    assert.ok(texts[0].length > 0 && texts[1].length > 0);
  });

  test('seed makes sampling reproducible', async () => {
    const req = { prompt: 'Once upon a time', max_tokens: 24, temperature: 1.0, seed: 1234 };
    const a = await s.client.completions.create(req);
    const b = await s.client.completions.create(req);
    assert.equal(a.choices[0].text, b.choices[0].text);
  });

  test('stop strings cut the text before the match', async () => {
    const full = (await s.client.completions.create({ prompt: 'Once upon a time', max_tokens: 40, temperature: 0 }))
      .choices[0].text;
    // a stop string from the middle of the greedy text
    const word = full.slice(Math.floor(full.length / 2)).match(/[A-Za-z]{3,}/)[0];
    const cut = full.indexOf(word);
    for (const stream of [false, true]) {
      const req = { prompt: 'Once upon a time', max_tokens: 40, temperature: 0, stop: ['zzzz', word], stream };
      let text = '', finish;
      if (stream) {
        for await (const c of await s.client.completions.create(req)) {
          text += c.choices[0].text;
          finish = c.choices[0].finish_reason ?? finish;
        }
      } else {
        const r = await s.client.completions.create(req);
        text = r.choices[0].text;
        finish = r.choices[0].finish_reason;
      }
      assert.equal(text, full.slice(0, cut), `stream=${stream}`);
      assert.equal(finish, 'stop');
    }
    const bad = await postJSON(`${s.url}/v1/completions`, { prompt: 'x', stop: ['a', 'b', 'c', 'd', 'e'] });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.param, 'stop');
  });

  test('chat logprobs with top_logprobs', async () => {
    const r = await s.client.chat.completions.create({
      messages: MSGS, max_tokens: 6, temperature: 0, logprobs: true, top_logprobs: 3,
    });
    const lp = r.choices[0].logprobs.content;
    assert.equal(lp.length, r.usage.completion_tokens);
    assert.equal(lp.map((e) => e.token).join(''), r.choices[0].message.content);
    for (const e of lp) {
      assert.ok(e.logprob <= 0);
      assert.deepEqual(e.bytes, [...Buffer.from(e.token)]);
      assert.equal(e.top_logprobs.length, 3);
      // greedy: the chosen token is the most likely one
      assert.ok(Math.abs(e.top_logprobs[0].logprob - e.logprob) < 1e-5);
      assert.ok(e.top_logprobs[0].logprob >= e.top_logprobs[1].logprob);
    }
  });

  test('completions logprobs (tokens, token_logprobs, top_logprobs, text_offset)', async () => {
    const r = await s.client.completions.create({ prompt: 'Once upon a time', max_tokens: 5, temperature: 0, logprobs: 2 });
    const lp = r.choices[0].logprobs;
    assert.equal(lp.tokens.length, 5);
    assert.equal(lp.tokens.join(''), r.choices[0].text);
    assert.equal(lp.token_logprobs.length, 5);
    assert.equal(lp.text_offset[0], 0);
    for (let i = 1; i < 5; i++) assert.equal(lp.text_offset[i], lp.text_offset[i - 1] + Buffer.byteLength(lp.tokens[i - 1]));
    for (const top of lp.top_logprobs) assert.ok(Object.keys(top).length >= 1 && Object.keys(top).length <= 2);
  });

  test('absent model is accepted, unknown model is 404', async () => {
    const ok = await postJSON(`${s.url}/v1/chat/completions`, { messages: MSGS, max_tokens: 2 });
    assert.equal(ok.status, 200);
    await assert.rejects(
      s.client.chat.completions.create({ model: 'gpt-4o', messages: MSGS }),
      (e) => e.status === 404 && e.code === 'model_not_found' && e.param === 'model');
  });

  test('native /infer, /batch_infer, /stream_infer', async () => {
    const one = await postJSON(`${s.url}/infer`, { prompt: 'Once upon a time', max_tokens: 10, temperature: 0 });
    assert.equal(one.status, 200);
    assert.equal(one.json.tokens.length, 10);
    assert.equal(one.json.finish_reason, 'length');
    assert.ok(one.json.timings.total_ms > 0);
    const cmpl = await s.client.completions.create({ prompt: 'Once upon a time', max_tokens: 10, temperature: 0 });
    assert.equal(one.json.text, cmpl.choices[0].text);
    const prompts = ['Once upon a time', 'The little dog', 'Lily and Tom'];
    const batch = await postJSON(`${s.url}/batch_infer`, { prompts, max_tokens: 8, temperature: 0 });
    assert.equal(batch.status, 200);
    assert.equal(batch.json.results.length, 3);
    for (let i = 0; i < 3; i++) {
      const single = await postJSON(`${s.url}/infer`, { prompt: prompts[i], max_tokens: 8, temperature: 0 });
      assert.equal(batch.json.results[i].text, single.json.text, `result ${i} in order`);
    }
    const st = await postJSON(`${s.url}/stream_infer`, { prompt: 'Once upon a time', max_tokens: 10, temperature: 0 });
    assert.equal(st.status, 200);
    const ev = sseEvents(st.text);
    assert.equal(ev[ev.length - 1], '[DONE]');
    const done = ev[ev.length - 2];
    assert.equal(done.done, true);
    assert.equal(done.usage.completion_tokens, 10);
    assert.equal(ev.filter((e) => e.text !== undefined).map((e) => e.text).join(''), one.json.text);
  });

  test('monitoring: /status, /models, /monitor/gpu, /monitor/memory, /metrics', async () => {
    const st = await getJSON(`${s.url}/status`);
    assert.equal(st.json.status, 'ok');
    assert.equal(st.json.model, MODEL);
    assert.ok(st.json.uptime_s > 0);
    assert.equal(st.json.config.parallel, 4);
    assert.equal(typeof st.json.running, 'number');
    assert.equal(typeof st.json.waiting, 'number');
    assert.ok(st.json.device.length > 0);
    const models = await getJSON(`${s.url}/models`);
    assert.equal(models.json.models[0].name, MODEL);
    const gpu = await getJSON(`${s.url}/monitor/gpu`);
    assert.ok(gpu.json.device.length > 0);
    assert.ok(['vulkan', 'cpu'].includes(gpu.json.type));
    assert.ok(gpu.json.utilization >= 0 && gpu.json.utilization <= 1);
    const mem = await getJSON(`${s.url}/monitor/memory`);
    assert.ok(mem.json.weights_bytes > 1000000);
    assert.ok(mem.json.kv_cache.blocks_total > 0);
    assert.ok(mem.json.host_rss_bytes > 0);
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    for (const name of ['lgpu_time_to_first_token_seconds_bucket', 'lgpu_inter_token_latency_seconds_count',
      'lgpu_e2e_request_latency_seconds_sum', 'lgpu_queue_time_seconds_count', 'lgpu_requests_total{status="ok"}',
      'lgpu_prompt_tokens_total', 'lgpu_generation_tokens_total', 'lgpu_requests_running', 'lgpu_requests_waiting',
      'lgpu_kv_cache_usage_ratio']) assert.ok(metrics.includes(name), name);
    const gen = Number(/^lgpu_generation_tokens_total (\d+)$/m.exec(metrics)[1]);
    assert.ok(gen > 50);
  });

  test('websocket: generate streams tokens then done; metrics subscription pushes frames', async () => {
    const ws = await wsConnect(`${s.url}/ws`);
    try {
      ws.send({ type: 'generate', prompt: 'Once upon a time', max_tokens: 10, temperature: 0, id: 'g1' });
      let text = '', m;
      while ((m = await ws.next()).type === 'token') { text += m.text; assert.equal(m.id, 'g1'); }
      assert.equal(m.type, 'done');
      assert.equal(m.usage.completion_tokens, 10);
      const ref = await postJSON(`${s.url}/infer`, { prompt: 'Once upon a time', max_tokens: 10, temperature: 0 });
      assert.equal(text, ref.json.text);
      ws.send({ type: 'generate', messages: 'not an array' });
      m = await ws.next();
      assert.equal(m.type, 'error');
      assert.equal(m.error.param, 'messages');
      ws.send({ type: 'subscribe', topic: 'metrics' });
      assert.equal((await ws.next()).type, 'subscribed');
      const f1 = await ws.next(5000), f2 = await ws.next(5000);
      assert.equal(f1.type, 'metrics');
      assert.equal(f2.type, 'metrics');
      assert.ok(f1.generation_tokens >= 10);
      assert.equal(typeof f2.running, 'number');
    } finally {
      ws.close();
    }
  });
});
