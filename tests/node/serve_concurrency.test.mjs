// Continuous batching: 8 concurrent greedy requests give exactly the text the
// same requests give one at a time; a shared system prompt is computed once.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { getJSON, withServer } from './serve_helpers.mjs';

const PROMPTS = [
  'Once upon a time', 'The little dog', 'Lily wanted to play', 'One day, a boy named Tim',
  'The sun was', 'In the park, there was a big tree', 'Mom said', 'The cat and the bird',
];

test('8 concurrent greedy requests match the same requests run one at a time', async () => {
  await withServer(['--parallel', '8'], async (s) => {
    // different lengths so prefill chunks and decode tokens share steps
    const req = (p, i) => ({ prompt: p, max_tokens: 24 + 8 * i, temperature: 0 });
    const alone = [];
    for (let i = 0; i < PROMPTS.length; i++) alone.push(await s.client.completions.create(req(PROMPTS[i], i)));
    const stepsBefore = (await getJSON(`${s.url}/status`)).json.engine.steps;
    const together = await Promise.all(PROMPTS.map((p, i) => {
      // half streaming, half not
      if (i % 2) return s.client.completions.create(req(p, i));
      return (async () => {
        let text = '';
        for await (const c of await s.client.completions.create({ ...req(p, i), stream: true })) text += c.choices[0].text;
        return { choices: [{ text }] };
      })();
    }));
    const steps = (await getJSON(`${s.url}/status`)).json.engine.steps - stepsBefore;
    for (let i = 0; i < PROMPTS.length; i++) assert.equal(together[i].choices[0].text, alone[i].choices[0].text, `request ${i}`);
    // batched: far fewer engine steps than the 8 requests' tokens one by one
    const tokens = alone.reduce((a, r) => a + r.usage.completion_tokens, 0);
    assert.ok(steps < tokens / 2, `${steps} steps for ${tokens} tokens`);
  });
});

test('a shared system prompt is computed once (prefix cache)', async () => {
  await withServer(['--parallel', '4'], async (s) => {
    const system = 'You are a kind storyteller who tells short, happy stories about animals. '.repeat(3);
    const ask = (q) => s.client.chat.completions.create({
      messages: [{ role: 'system', content: system }, { role: 'user', content: q }], max_tokens: 8, temperature: 0,
    });
    const first = await ask('A story about a cat.');
    assert.equal(first.usage.prompt_tokens_details.cached_tokens, 0);
    const second = await ask('A story about a fox.');
    assert.ok(second.usage.prompt_tokens_details.cached_tokens >= 32,
      `cached ${second.usage.prompt_tokens_details.cached_tokens} of ${second.usage.prompt_tokens}`);
    // concurrent requests with a new shared prefix: all but one reuse it
    const sys2 = 'Tell every story as if to a small child, with a happy ending. '.repeat(3);
    const rs = await Promise.all(['dog', 'owl', 'bee'].map((a) => s.client.chat.completions.create({
      messages: [{ role: 'system', content: sys2 }, { role: 'user', content: `About a ${a}.` }], max_tokens: 8,
      temperature: 0,
    })));
    const reused = rs.filter((r) => r.usage.prompt_tokens_details.cached_tokens >= 32).length;
    assert.ok(reused >= 2, `${reused} of 3 reused the shared prefix`);
  });
});
