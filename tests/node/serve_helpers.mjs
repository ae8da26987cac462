// Shared helpers for the lgpu-serve tests: start a server on a free port,
// wait for /health, collect its log, stop it; a minimal WebSocket client.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, openSync, closeSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';

const here = path.dirname(fileURLToPath(import.meta.url));
export const SERVE_BIN = process.env.LGPU_SERVE_BIN || path.join(here, '..', '..', 'build', 'serve', 'lgpu-serve');
export const MODELS = process.env.LGPU_MODELS || path.join(here, '..', '..', '..', 'shared', 'models');
export const MODEL = path.join(MODELS, 'stories260K.gguf');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A fresh directory under the system temp dir, removed when this test file's
// process exits (failed tests included: their server logs stay readable until then).
const tempDirs = [];
process.on('exit', () => {
  for (const d of tempDirs) {
    try { rmSync(d, { recursive: true, force: true }); } catch { /* best effort */ }
  }
});
export function tempDir(prefix) {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

// Starts lgpu-serve with --port 0 and extra args; resolves once /health is 200.
// model null: no -m (the model built into the server).
export async function startServer(args = [], { env = {}, waitReady = true, model = MODEL } = {}) {
  const dir = tempDir('lgpu-serve-test-');
  const logPath = path.join(dir, 'server.log');
  const fd = openSync(logPath, 'w');
  const proc = spawn(SERVE_BIN, [...(model === null ? [] : ['-m', model]), '--port', '0', ...args], {
    stdio: ['ignore', fd, fd],
    env: { ...process.env, ...env },
  });
  closeSync(fd);
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  let exitInfo = null;
  exited.then((e) => { exitInfo = e; });
  const log = () => { try { return readFileSync(logPath, 'utf8'); } catch { return ''; } };
  let port = 0;
  for (let i = 0; i < 600 && !port; i++) {
    const m = /listening on http:\/\/[^:]+:(\d+)/.exec(log());
    if (m) port = Number(m[1]);
    else if (exitInfo) throw new Error(`lgpu-serve exited early (${JSON.stringify(exitInfo)}):\n${log()}`);
    else await sleep(50);
  }
  if (!port) throw new Error(`lgpu-serve did not start listening:\n${log()}`);
  const url = `http://127.0.0.1:${port}`;
  const server = {
    url, port, proc, logPath, log, exited,
    client: new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 120000 }),
    async stop(signal = 'SIGTERM') {
      if (!exitInfo) proc.kill(signal);
      return exited;
    },
  };
  if (waitReady) {
    for (let i = 0; ; i++) {
      if (exitInfo) throw new Error(`lgpu-serve exited while loading:\n${log()}`);
      try {
        const r = await fetch(`${url}/health`);
        if (r.status === 200) break;
      } catch { /* not yet */ }
      if (i > 12000) throw new Error(`lgpu-serve never became healthy:\n${log()}`); // 10 min: cold kernel builds
      await sleep(50);
    }
  }
  return server;
}

// Runs fn(server) against a fresh server; prints the server log if fn throws;
// stops the server and checks it exited cleanly (0: no leaks under ASan).
export async function withServer(args, fn, opts = {}) {
  const s = await startServer(args, opts);
  let failed = true;
  try {
    await fn(s);
    failed = false;
  } finally {
    const e = await s.stop();
    if (failed || e.code !== 0) {
      console.error(`---- lgpu-serve log (${s.logPath}) ----\n${s.log()}\n---- end of log ----`);
    }
    if (!failed && e.code !== 0) throw new Error(`lgpu-serve exited with ${JSON.stringify(e)}`);
  }
}

export async function postJSON(url, body, init = {}) {
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body),
    ...init,
  });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, headers: r.headers, text, json };
}

export async function getJSON(url) {
  const r = await fetch(url);
  return { status: r.status, json: await r.json() };
}

// Parses an SSE body into the JSON of each data: event ('[DONE]' kept as a string).
export function sseEvents(text) {
  return text.split('\n\n').filter((b) => b.startsWith('data: ')).map((b) => {
    const d = b.slice(6);
    return d === '[DONE]' ? d : JSON.parse(d);
  });
}

// Minimal RFC 6455 client (text frames only), enough for /ws.
export function wsConnect(url) {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(u.port), u.hostname);
    const key = randomBytes(16).toString('base64');
    let buf = Buffer.alloc(0), open = false;
    const queue = [], waiters = [];
    const deliver = (m) => { const w = waiters.shift(); if (w) w(m); else queue.push(m); };
    sock.on('error', reject);
    sock.on('connect', () => sock.write(
      `GET ${u.pathname} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`));
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (!open) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString();
        const accept = createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
        if (!head.startsWith('HTTP/1.1 101') || !head.includes(accept)) return reject(new Error(`bad handshake: ${head}`));
        open = true;
        buf = buf.subarray(end + 4);
        resolve(client);
      }
      for (;;) {
        if (buf.length < 2) return;
        let len = buf[1] & 0x7f, off = 2;
        if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4; }
        else if (len === 127) { if (buf.length < 10) return; len = Number(buf.readBigUInt64BE(2)); off = 10; }
        if (buf.length < off + len) return;
        const op = buf[0] & 0x0f, payload = buf.subarray(off, off + len);
        buf = buf.subarray(off + len);
        if (op === 1) deliver(JSON.parse(payload.toString()));
      }
    });
    const client = {
      send(obj) {
        const data = Buffer.from(JSON.stringify(obj)), mask = randomBytes(4);
        const head = data.length < 126 ? Buffer.from([0x81, 0x80 | data.length])
          : Buffer.from([0x81, 0x80 | 126, data.length >> 8, data.length & 0xff]);
        const body = Buffer.from(data.map((b, i) => b ^ mask[i % 4]));
        sock.write(Buffer.concat([head, mask, body]));
      },
      next(timeoutMs = 30000) {
        if (queue.length) return Promise.resolve(queue.shift());
        return new Promise((res, rej) => {
          const t = setTimeout(() => rej(new Error('websocket: no message')), timeoutMs);
          waiters.push((m) => { clearTimeout(t); res(m); });
        });
      },
      close() { sock.end(Buffer.from([0x88, 0x80, 0, 0, 0, 0])); sock.destroy(); },
    };
  });
}
