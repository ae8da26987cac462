// A catalogue of bad requests: each gets the right 4xx in OpenAI's error
// shape (param naming the field where there is one) and the server keeps
// serving. Runs against the ASan build in CI (tools/test.sh), so any crash
// or leak on these inputs fails here too.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { postJSON, withServer } from './serve_helpers.mjs';

const MSG = [{ role: 'user', content: 'hi' }];
const chat = (extra) => ({ messages: MSG, max_tokens: 4, ...extra });

// [name, path, body (object, or raw string / Buffer), status, param, code]
const CASES = [
  ['malformed JSON', '/v1/chat/completions', '{"messages": [', 400, null, 'invalid_json'],
  ['not an object', '/v1/chat/completions', '[1,2]', 400, null, 'invalid_json'],
  ['empty body', '/v1/chat/completions', '', 400, null, undefined],
  ['missing messages', '/v1/chat/completions', { max_tokens: 4 }, 400, 'messages'],
  ['messages not an array', '/v1/chat/completions', { messages: 'hi' }, 400, 'messages'],
  ['empty messages', '/v1/chat/completions', { messages: [] }, 400, 'messages'],
  ['message not an object', '/v1/chat/completions', { messages: [42] }, 400, 'messages[0]'],
  ['bad role', '/v1/chat/completions', { messages: [{ role: 'wizard', content: 'x' }] }, 400, 'messages[0].role'],
  ['missing content', '/v1/chat/completions', { messages: [{ role: 'user' }] }, 400, 'messages[0].content'],
  ['content wrong type', '/v1/chat/completions', { messages: [{ role: 'user', content: 7 }] }, 400, 'messages[0].content'],
  ['invalid UTF-8 in content', '/v1/chat/completions',
    Buffer.concat([Buffer.from('{"messages":[{"role":"user","content":"a'), Buffer.from([0xff, 0xc3, 0x28]),
      Buffer.from('"}]}')]), 400, null, 'invalid_json'],
  ['lone surrogate escape', '/v1/chat/completions', '{"messages":[{"role":"user","content":"\\ud800"}]}', 400, null,
    'invalid_json'],
  ['deeply nested JSON', '/v1/chat/completions', `{"messages":${'['.repeat(3000)}${']'.repeat(3000)}}`, 400, null,
    'invalid_json'],
  ['max_tokens negative', '/v1/chat/completions', chat({ max_tokens: -1 }), 400, 'max_tokens'],
  ['max_tokens huge', '/v1/chat/completions', chat({ max_tokens: 1e12 }), 400, 'max_tokens'],
  ['max_tokens wrong type', '/v1/chat/completions', chat({ max_tokens: '10' }), 400, 'max_tokens'],
  ['max_completion_tokens zero', '/v1/chat/completions', chat({ max_completion_tokens: 0 }), 400,
    'max_completion_tokens'],
  ['temperature too high', '/v1/chat/completions', chat({ temperature: 3 }), 400, 'temperature'],
  ['temperature wrong type', '/v1/chat/completions', chat({ temperature: 'hot' }), 400, 'temperature'],
  ['top_p out of range', '/v1/chat/completions', chat({ top_p: -0.5 }), 400, 'top_p'],
  ['top_k negative', '/v1/chat/completions', chat({ top_k: -3 }), 400, 'top_k'],
  ['min_p out of range', '/v1/chat/completions', chat({ min_p: 1.5 }), 400, 'min_p'],
  ['typical_p zero', '/v1/chat/completions', chat({ typical_p: 0 }), 400, 'typical_p'],
  ['repeat_penalty zero', '/v1/chat/completions', chat({ repeat_penalty: 0 }), 400, 'repeat_penalty'],
  ['presence_penalty out of range', '/v1/chat/completions', chat({ presence_penalty: 9 }), 400, 'presence_penalty'],
  ['frequency_penalty out of range', '/v1/chat/completions', chat({ frequency_penalty: -9 }), 400,
    'frequency_penalty'],
  ['n too large', '/v1/chat/completions', chat({ n: 1000 }), 400, 'n'],
  ['n zero', '/v1/chat/completions', chat({ n: 0 }), 400, 'n'],
  ['seed not an integer', '/v1/chat/completions', chat({ seed: 'abc' }), 400, 'seed'],
  ['too many stops', '/v1/chat/completions', chat({ stop: ['a', 'b', 'c', 'd', 'e'] }), 400, 'stop'],
  ['stop wrong type', '/v1/chat/completions', chat({ stop: [1] }), 400, 'stop[0]'],
  ['logprobs wrong type (chat)', '/v1/chat/completions', chat({ logprobs: 3 }), 400, 'logprobs'],
  ['top_logprobs without logprobs', '/v1/chat/completions', chat({ top_logprobs: 2 }), 400, 'top_logprobs'],
  ['top_logprobs too large', '/v1/chat/completions', chat({ logprobs: true, top_logprobs: 50 }), 400,
    'top_logprobs'],
  ['stream wrong type', '/v1/chat/completions', chat({ stream: 'yes' }), 400, 'stream'],
  ['stream_options without stream', '/v1/chat/completions', chat({ stream_options: { include_usage: true } }), 400,
    'stream_options'],
  ['unsupported tools', '/v1/chat/completions', chat({ tools: [{ type: 'function' }] }), 400, 'tools'],
  ['unknown model', '/v1/chat/completions', chat({ model: 'gpt-4' }), 404, 'model', 'model_not_found'],
  ['model wrong type', '/v1/chat/completions', chat({ model: 5 }), 400, 'model'],
  ['prompt missing', '/v1/completions', { max_tokens: 3 }, 400, 'prompt'],
  ['prompt wrong type', '/v1/completions', { prompt: { a: 1 } }, 400, 'prompt'],
  ['token id out of vocabulary', '/v1/completions', { prompt: [1, 100000] }, 400, 'prompt'],
  ['logprobs too large (completions)', '/v1/completions', { prompt: 'x', logprobs: 9 }, 400, 'logprobs'],
  ['prompt longer than the context', '/v1/completions', { prompt: 'word '.repeat(400) }, 400, 'prompt',
    'context_length_exceeded'],
  ['/infer without prompt', '/infer', { max_tokens: 3 }, 400, 'prompt'],
  ['/batch_infer prompts not an array', '/batch_infer', { prompts: 'x' }, 400, 'prompts'],
  ['/infer n', '/infer', { prompt: 'x', n: 2 }, 400, 'n'],
];

test('bad requests get OpenAI-shaped 4xx errors and the server keeps serving', async () => {
  await withServer(['--ctx', '256', '--max-body', '65536'], async (s) => {
    for (const [name, path, body, status, param, code] of CASES) {
      const r = await postJSON(`${s.url}${path}`, body);
      assert.equal(r.status, status, `${name}: status (${r.text})`);
      assert.ok(r.json && r.json.error, `${name}: error object (${r.text})`);
      const e = r.json.error;
      assert.equal(typeof e.message, 'string', name);
      assert.ok(e.message.length > 0, name);
      assert.equal(typeof e.type, 'string', name);
      assert.ok('param' in e && 'code' in e, `${name}: param and code present`);
      assert.equal(e.param, param, `${name}: param (${e.message})`);
      if (code !== undefined) assert.equal(e.code, code, `${name}: code`);
      if (status === 400) assert.equal(e.type, 'invalid_request_error', name);
    }
    // oversized body: 413 before reading it
    const big = await postJSON(`${s.url}/v1/completions`, { prompt: 'x'.repeat(100000) });
    assert.equal(big.status, 413);
    assert.equal(big.json.error.code, 'request_too_large');
    // unknown endpoint 404, wrong method 405 with Allow
    const nf = await fetch(`${s.url}/v1/nothing`);
    assert.equal(nf.status, 404);
    assert.equal((await nf.json()).error.type, 'invalid_request_error');
    const wm = await fetch(`${s.url}/v1/chat/completions`);
    assert.equal(wm.status, 405);
    assert.equal(wm.headers.get('allow'), 'POST');
    assert.equal((await wm.json()).error.code, 'method_not_allowed');
    const wm2 = await fetch(`${s.url}/health`, { method: 'DELETE' });
    assert.equal(wm2.status, 405);
    // random bytes and random JSON fragments never crash it
    let seed = 12345;
    const rnd = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
    const frags = ['{', '}', '[', ']', '"messages"', ':', ',', '"role"', '"user"', '"content"', '"x"', '1e999', '-0',
      'null', 'true', '"\\u0000"', '"\\ud83d"', '\xff', '0.5', '"max_tokens"', '"stop"', '"n"', '"logprobs"'];
    for (let i = 0; i < 60; i++) {
      const body = i % 2
        ? Buffer.from(Array.from({ length: rnd(200) }, () => rnd(256)))
        : Array.from({ length: rnd(40) }, () => frags[rnd(frags.length)]).join('');
      const path = ['/v1/chat/completions', '/v1/completions', '/infer', '/batch_infer', '/stream_infer'][rnd(5)];
      const r = await postJSON(`${s.url}${path}`, body);
      assert.ok(r.status >= 400 && r.status < 500 && r.json?.error, `fuzz ${i} on ${path}: ${r.status} ${r.text}`);
    }
    // still healthy and still generating
    assert.equal((await fetch(`${s.url}/health`)).status, 200);
    const ok = await postJSON(`${s.url}/v1/chat/completions`, chat({}));
    assert.equal(ok.status, 200);
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    const invalid = Number(/^lgpu_requests_total\{status="invalid"\} (\d+)$/m.exec(metrics)[1]);
    assert.ok(invalid >= CASES.length, `invalid requests counted (${invalid})`);
  });
});
