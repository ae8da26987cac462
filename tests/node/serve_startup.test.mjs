// Startup and settings end to end: a config file, environment variables and
// flags combine with the documented precedence; the server becomes healthy
// (building its GPU kernels first: meson runs this test alone and before the
// other serve tests, so they find the shader caches warm) and exits 0 on SIGTERM.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { SERVE_BIN, getJSON, postJSON, sseEvents, tempDir, withServer } from './serve_helpers.mjs';

test('--help lists every setting with its environment variable', () => {
  const r = spawnSync(SERVE_BIN, ['--help'], { encoding: 'utf8' });
  assert.equal(r.status, 0);
  for (const s of ['--parallel', 'LGPU_PARALLEL', '--queue', '--timeout', '--max-body', '--config', 'LGPU_CTX'])
    assert.ok(r.stdout.includes(s), s);
  const bad = spawnSync(SERVE_BIN, ['-m', 'x', '--parallel', 'many'], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--parallel/);
});

// README's quick start on a fresh clone: no -m, no model files anywhere.
test('without -m it serves the embedded stories260K model', async () => {
  await withServer([], async (s) => {
    assert.match(s.log(), /no -m given: using the embedded stories260K model/);
    const models = await s.client.models.list();
    assert.deepEqual(models.data.map((m) => m.id), ['stories260K']);
    const r = await postJSON(`${s.url}/v1/chat/completions`, {
      model: 'stories260K', stream: true, max_tokens: 16, temperature: 0,
      messages: [{ role: 'user', content: 'Tell me a story' }],
    });
    assert.equal(r.status, 200);
    const ev = sseEvents(r.text);
    assert.equal(ev.at(-1), '[DONE]');
    const text = ev.slice(0, -1).map((e) => e.choices[0]?.delta?.content ?? '').join('');
    assert.ok(text.length > 0, 'streamed some text');
  }, { model: null });
});

test('defaults < config file < environment < flags', async () => {
  const dir = tempDir('lgpu-serve-cfg-');
  const cfg = path.join(dir, 'serve.json');
  writeFileSync(cfg, JSON.stringify({ parallel: 3, queue: 9, timeout: 77, model_name: 'from-file', ctx: 512 }));
  await withServer(['--config', cfg, '--queue', '11'], async (s) => {
    const st = await getJSON(`${s.url}/status`);
    assert.equal(st.json.status, 'ok');
    const c = st.json.config;
    assert.equal(c.parallel, 3);           // file
    assert.equal(c.ctx, 512);              // file
    assert.equal(c.timeout, 120);          // env over file
    assert.equal(c.model_name, 'from-env'); // env over file
    assert.equal(c.queue, 11);             // flag over file
    assert.equal(c.max_body, 1048576);     // default
    assert.equal(st.json.n_ctx, 512);
    const models = await s.client.models.list();
    assert.deepEqual(models.data.map((m) => m.id), ['from-env']);
  }, { env: { LGPU_TIMEOUT: '120', LGPU_MODEL_NAME: 'from-env' } });
});
