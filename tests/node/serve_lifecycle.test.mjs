// Request lifecycle: client disconnects cancel their sequences, a full queue
// answers 429 with Retry-After, the per-request timeout, KV-cache preemption,
// and graceful shutdown on SIGTERM.
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { getJSON, postJSON, sseEvents, startServer, tempDir, withServer } from './serve_helpers.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const LONG = { prompt: 'Once upon a time', max_tokens: 1500, ignore_eos: true, temperature: 0 };

async function metric(url, name) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = new RegExp(`^${name.replace(/[{}"]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

async function until(cond, what, ms = 20000) {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

test('a client that disconnects has its sequence cancelled; the server keeps serving', async () => {
  await withServer([], async (s) => {
    // streaming: abort after a few chunks
    const stream = await s.client.completions.create({ ...LONG, stream: true });
    let n = 0;
    for await (const c of stream) {
      if (c.choices[0].text && ++n === 3) break; // leaving the loop aborts the request
    }
    await until(async () => (await getJSON(`${s.url}/status`)).json.engine.cancelled >= 1, 'stream cancellation');
    // non-streaming: abort the fetch while the engine generates
    const ac = new AbortController();
    const p = fetch(`${s.url}/v1/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(LONG), signal: ac.signal,
    }).catch((e) => e);
    await until(async () => (await getJSON(`${s.url}/status`)).json.running >= 1, 'the request to run');
    ac.abort();
    await p;
    await until(async () => (await getJSON(`${s.url}/status`)).json.engine.cancelled >= 2, 'polled cancellation');
    await until(async () => (await getJSON(`${s.url}/status`)).json.running === 0, 'no running sequence');
    assert.ok(await metric(s.url, 'lgpu_requests_total{status="cancelled"}') >= 2);
    const r = await s.client.completions.create({ prompt: 'Once', max_tokens: 5, temperature: 0 });
    assert.equal(r.usage.completion_tokens, 5);
  });
});

test('a full queue answers 429 with Retry-After', async () => {
  await withServer(['--parallel', '1', '--queue', '1'], async (s) => {
    const reqs = Array.from({ length: 5 }, () => postJSON(`${s.url}/v1/completions`, { ...LONG, max_tokens: 300 }));
    const res = await Promise.all(reqs);
    const codes = res.map((r) => r.status).sort();
    const rejected = res.filter((r) => r.status === 429);
    assert.ok(rejected.length >= 1, `some rejected (${codes})`);
    assert.ok(res.filter((r) => r.status === 200).length >= 2, `running + queued served (${codes})`);
    for (const r of rejected) {
      assert.match(r.headers.get('retry-after') ?? '', /^\d+$/);
      assert.equal(r.json.error.code, 'rate_limit_exceeded');
    }
    assert.ok(await metric(s.url, 'lgpu_requests_total{status="rejected"}') >= 1);
    assert.equal((await fetch(`${s.url}/health`)).status, 200);
  });
});

test('a request past the timeout gets 504, or an SSE error event when streaming', async () => {
  await withServer(['--timeout', '1'], async (s) => {
    const r = await postJSON(`${s.url}/v1/completions`, LONG);
    assert.equal(r.status, 504, r.text);
    assert.equal(r.json.error.code, 'timeout');
    const st = await postJSON(`${s.url}/v1/chat/completions`, {
      messages: [{ role: 'user', content: 'hi' }], max_tokens: 1500, ignore_eos: true, stream: true,
    });
    assert.equal(st.status, 200);
    const ev = sseEvents(st.text);
    assert.equal(ev[ev.length - 1].error.code, 'timeout');
    assert.ok(!ev.includes('[DONE]'));
    assert.ok(await metric(s.url, 'lgpu_requests_total{status="timeout"}') >= 2);
  });
});

test('a small KV cache preempts and recomputes without changing greedy output', async () => {
  const prompts = ['Once upon a time', 'The little dog', 'Lily wanted to', 'One day, a boy'];
  const req = (p) => ({ prompt: p, max_tokens: 90, ignore_eos: true, temperature: 0 });
  // 12 blocks of 16 tokens = 192 slots for 4 sequences of ~95 tokens
  await withServer(['--parallel', '4', '--kv-blocks', '12'], async (s) => {
    const together = await Promise.all(prompts.map((p) => postJSON(`${s.url}/v1/completions`, req(p))));
    const st = await getJSON(`${s.url}/status`);
    assert.ok(st.json.engine.preemptions >= 1, `preempted (${JSON.stringify(st.json.engine)})`);
    for (let i = 0; i < prompts.length; i++) {
      assert.equal(together[i].status, 200, together[i].text);
      assert.equal(together[i].json.usage.completion_tokens, 90);
      const alone = await postJSON(`${s.url}/v1/completions`, req(prompts[i]));
      assert.equal(together[i].json.choices[0].text, alone.json.choices[0].text, `prompt ${i}`);
    }
  });
});

test('SIGTERM: the in-flight request completes, new connections are refused, exit 0', async () => {
  const s = await startServer([]);
  let ok = false;
  try {
    // settled either way at once, so a failure surfaces as this test's error
    const inflight = postJSON(`${s.url}/v1/completions`, { ...LONG, max_tokens: 400, stream: true })
      .then((r) => r, (e) => e);
    await until(async () => (await getJSON(`${s.url}/status`)).json.running >= 1, 'the request to run');
    s.proc.kill('SIGTERM');
    // a fresh TCP connection (fetch would reuse a kept-alive one, which gets 503)
    const refused = () => new Promise((resolve) => {
      const c = net.connect(s.port, '127.0.0.1');
      c.on('connect', () => { c.destroy(); resolve(false); });
      c.on('error', (e) => resolve(e.code === 'ECONNREFUSED'));
    });
    await until(refused, 'new connections to be refused', 10000);
    const r = await inflight;
    if (r instanceof Error) throw r;
    assert.equal(r.status, 200);
    const ev = sseEvents(r.text);
    assert.equal(ev[ev.length - 1], '[DONE]');
    assert.equal(ev[ev.length - 2].choices[0].finish_reason, 'length');
    const { code } = await s.exited;
    assert.equal(code, 0);
    ok = true;
  } finally {
    if (!ok) console.error(s.log());
    await s.stop('SIGKILL');
  }
});

test('while the model loads: /health 503 "loading", API 503; a failed load exits 1', async () => {
  // a Hub that answers 404 after a pause keeps the server loading meanwhile
  const hub = http.createServer((req, res) => setTimeout(() => { res.writeHead(404); res.end(); }, 1500));
  await new Promise((r) => hub.listen(0, '127.0.0.1', r));
  const home = tempDir('lgpu-serve-hf-');
  const s = await startServer([], {
    waitReady: false, model: 'test/model:x.gguf',
    env: { HF_ENDPOINT: `http://127.0.0.1:${hub.address().port}`, HF_HOME: home, HF_HUB_CACHE: path.join(home, 'hub') },
  });
  let ok = false;
  try {
    const h = await getJSON(`${s.url}/health`);
    assert.equal(h.status, 503);
    assert.equal(h.json.status, 'loading');
    const r = await postJSON(`${s.url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(r.status, 503);
    assert.equal(r.json.error.code, 'model_loading');
    assert.equal((await fetch(`${s.url}/metrics`)).status, 200);
    const { code } = await s.exited;
    assert.equal(code, 1);
    assert.match(s.log(), /cannot load the model/);
    ok = true;
  } finally {
    if (!ok) console.error(s.log());
    await s.stop('SIGKILL');
    hub.close();
  }
});
