#!/usr/bin/env node
// Opens HTML reports in headless Chromium and fails on anything a reader's
// browser would complain about: console errors and warnings, uncaught
// exceptions, failed loads, and any request that leaves the page (a report
// must be self-contained: file: and data: URLs only). Optionally saves a
// full-page screenshot.
//
//   node check_html.mjs [--screenshot OUT.png] [--width PX] [--expect-text TEXT]... FILE.html...
//
// Chromium is driven over the DevTools protocol on a pipe
// (--remote-debugging-pipe: fd 3 to the browser, fd 4 back, messages ended
// by NUL), so no port, no WebSocket and no npm package are needed.
// CHROMIUM names the browser (default: chromium, then chromium-browser,
// google-chrome). Exit status: 0 clean, 1 problems found, 77 no browser.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

function parseArgs(argv) {
  const o = { files: [], screenshot: null, width: 1280, expect: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--screenshot') o.screenshot = argv[++i];
    else if (a === '--width') o.width = Number(argv[++i]);
    else if (a === '--expect-text') o.expect.push(argv[++i]);
    else if (a.startsWith('--')) throw new Error(`unknown option ${a}`);
    else o.files.push(a);
  }
  if (!o.files.length) throw new Error('usage: check_html.mjs [--screenshot OUT.png] [--width PX] FILE.html...');
  return o;
}

function findBrowser() {
  const names = process.env.CHROMIUM ? [process.env.CHROMIUM] : ['chromium', 'chromium-browser', 'google-chrome'];
  for (const n of names) {
    const r = spawnSync(n, ['--version'], { encoding: 'utf8', timeout: 30000 });
    if (!r.error && r.status === 0) return { bin: n, version: r.stdout.trim() };
  }
  return null;
}

class Cdp {
  constructor(child) {
    this.child = child;
    this.out = child.stdio[3];
    this.nextId = 1;
    this.pending = new Map();
    this.listeners = [];
    let buf = Buffer.alloc(0);
    child.stdio[4].on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      let end;
      while ((end = buf.indexOf(0)) >= 0) {
        const msg = JSON.parse(buf.subarray(0, end).toString('utf8'));
        buf = buf.subarray(end + 1);
        if (msg.id && this.pending.has(msg.id)) {
          const { resolve: ok, reject, method } = this.pending.get(msg.id);
          this.pending.delete(msg.id);
          if (msg.error) reject(new Error(`${method}: ${msg.error.message}`));
          else ok(msg.result);
        } else if (msg.method) {
          for (const l of this.listeners) l(msg);
        }
      }
    });
  }
  send(method, params = {}, sessionId) {
    const id = this.nextId++;
    const msg = { id, method, params };
    if (sessionId) msg.sessionId = sessionId;
    return new Promise((ok, reject) => {
      this.pending.set(id, { resolve: ok, reject, method });
      this.out.write(JSON.stringify(msg) + '\0');
    });
  }
  on(fn) { this.listeners.push(fn); }
  waitFor(pred, ms, what) {
    return new Promise((ok, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
      this.on((m) => { if (pred(m)) { clearTimeout(t); ok(m); } });
    });
  }
}

async function checkPage(cdp, file, opts) {
  const problems = [];
  const url = pathToFileURL(resolve(file)).href;
  const { targetId } = await cdp.send('Target.createTarget', { url: 'about:blank' });
  const { sessionId } = await cdp.send('Target.attachToTarget', { targetId, flatten: true });
  cdp.on((m) => {
    if (m.sessionId !== sessionId) return;
    const p = m.params || {};
    if (m.method === 'Runtime.consoleAPICalled' && ['error', 'warning', 'assert'].includes(p.type))
      problems.push(`console.${p.type}: ${(p.args || []).map((a) => a.value ?? a.description).join(' ')}`);
    else if (m.method === 'Runtime.exceptionThrown')
      problems.push(`uncaught exception: ${p.exceptionDetails?.exception?.description || p.exceptionDetails?.text}`);
    else if (m.method === 'Log.entryAdded' && ['error', 'warning'].includes(p.entry?.level))
      problems.push(`console ${p.entry.level} (${p.entry.source}): ${p.entry.text}${p.entry.url ? ' ' + p.entry.url : ''}`);
    else if (m.method === 'Network.requestWillBeSent' && !/^(file|data|about):/.test(p.request?.url || ''))
      problems.push(`external request: ${p.request.url} (a report must be self-contained)`);
    else if (m.method === 'Network.loadingFailed' && !p.canceled)
      problems.push(`failed load: ${p.errorText} (${p.type})`);
  });
  for (const d of ['Runtime', 'Log', 'Network', 'Page']) await cdp.send(`${d}.enable`, {}, sessionId);
  await cdp.send('Emulation.setDeviceMetricsOverride',
    { width: opts.width, height: 900, deviceScaleFactor: 1, mobile: false }, sessionId);
  const loaded = cdp.waitFor((m) => m.sessionId === sessionId && m.method === 'Page.loadEventFired', 60000,
    `the load of ${file}`);
  const nav = await cdp.send('Page.navigate', { url }, sessionId);
  if (nav.errorText) problems.push(`navigation failed: ${nav.errorText}`);
  else await loaded;
  await new Promise((r) => setTimeout(r, 300)); // late console messages
  const probe = await cdp.send('Runtime.evaluate', {
    expression: `JSON.stringify({svg: document.querySelectorAll('svg').length,
      tables: document.querySelectorAll('table').length, text: document.body.innerText,
      scripts: document.scripts.length, height: document.documentElement.scrollHeight})`,
    returnByValue: true,
  }, sessionId);
  const info = JSON.parse(probe.result.value);
  if (info.scripts) problems.push(`the page has ${info.scripts} script element(s); reports need no JavaScript`);
  for (const t of opts.expect)
    if (!info.text.includes(t)) problems.push(`the page does not show "${t}"`);
  if (opts.screenshot) {
    const height = Math.min(Math.max(info.height, 600), 16000);
    await cdp.send('Emulation.setDeviceMetricsOverride',
      { width: opts.width, height, deviceScaleFactor: 1, mobile: false }, sessionId);
    const shot = await cdp.send('Page.captureScreenshot', { format: 'png', captureBeyondViewport: true }, sessionId);
    writeFileSync(opts.screenshot, Buffer.from(shot.data, 'base64'));
  }
  await cdp.send('Target.closeTarget', { targetId });
  return { problems, info };
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  for (const f of opts.files) if (!existsSync(f)) throw new Error(`${f}: no such file`);
  const browser = findBrowser();
  if (!browser) {
    console.log('SKIP: no Chromium (apt-get install chromium, or set CHROMIUM)');
    process.exit(77);
  }
  const profile = mkdtempSync(join(tmpdir(), 'lgpu-chromium-'));
  const child = spawn(browser.bin, ['--headless', '--no-sandbox', '--disable-gpu', '--remote-debugging-pipe',
    '--no-first-run', '--no-default-browser-check', '--disable-extensions', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--mute-audio', `--user-data-dir=${profile}`, 'about:blank'],
  { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stdio[2].on('data', (d) => { stderr += d; });
  const exited = new Promise((r) => child.on('exit', r));
  let bad = 0;
  try {
    const cdp = new Cdp(child);
    const timer = setTimeout(() => { console.error('FAIL: the browser did not answer in 120 s'); child.kill('SIGKILL'); }, 120000);
    for (const f of opts.files) {
      const { problems, info } = await checkPage(cdp, f, opts);
      console.log(`${f}: ${info.tables} tables, ${info.svg} SVG charts, ${problems.length} problems (${browser.version})`);
      for (const p of problems) console.log(`  ${p}`);
      bad += problems.length;
    }
    clearTimeout(timer);
    await cdp.send('Browser.close').catch(() => {});
  } catch (e) {
    console.error(`FAIL: ${e.message}`);
    if (stderr) console.error(stderr.split('\n').slice(-20).join('\n'));
    bad++;
    child.kill('SIGKILL');
  }
  await exited;
  rmSync(profile, { recursive: true, force: true });
  if (opts.screenshot && !bad) console.log(`screenshot: ${opts.screenshot}`);
  process.exit(bad ? 1 : 0);
}

main().catch((e) => { console.error(`FAIL: ${e.message}`); process.exit(1); });
