#!/usr/bin/env node
// The browser test: a peer in a headless Chromium tab (the page in ../www, overlay-wasm)
// joins native `overlay` peers through the WebSocket bridge, and the tab and the CLI read
// each other's values. Chord first, then the Mainline DHT.
//
//   cd bindings-wasm && npm install && node browser/run.mjs
//
// Env: OVERLAY  the `overlay` binary (default: <repo>/target/release/overlay)
//      OUT_DIR  screenshots and browser.log (default: <repo>/target/wasm/browser)
//      CHROMIUM the browser (default: /usr/bin/chromium)
// Prints `ok - ...` / `not ok - ...` per check and `browser: N passed, M failed`; exits 1
// on any failure. Every wait is bounded, and every process it starts is killed at the end.

import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
// The Node build of the same package: the oracle computes key ids as every peer does.
const { ChordNode } = createRequire(import.meta.url)('../pkg/node/overlay_wasm.js');
const PKG = path.resolve(here, '..');
const ROOT = path.resolve(PKG, '..');
const WWW = path.join(PKG, 'www');
const OVERLAY = path.resolve(process.env.OVERLAY || path.join(ROOT, 'target', 'release', 'overlay'));
const OUT_DIR = path.resolve(process.env.OUT_DIR || path.join(ROOT, 'target', 'wasm', 'browser'));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const TOTAL_MS = Number(process.env.BROWSER_TEST_TIMEOUT_MS || 300_000);
const VIEWPORT = { width: 1280, height: 800 };

fs.mkdirSync(OUT_DIR, { recursive: true });
const logFile = fs.openSync(path.join(OUT_DIR, 'browser.log'), 'w');
const started = Date.now();
function note(line) {
  const t = ((Date.now() - started) / 1000).toFixed(2).padStart(7);
  fs.writeSync(logFile, `${t} ${line}\n`);
}

// ------------------------------------------------------------------ checks

let passed = 0;
let failed = 0;
function check(ok, name, detail) {
  const line = `${ok ? 'ok' : 'not ok'} - ${name}${!ok && detail ? ` (${detail})` : ''}`;
  console.log(line);
  note(line);
  if (ok) passed++;
  else failed++;
  return ok;
}

/** Runs a step that must work for the ones after it; a throw is one failed check. */
async function step(name, fn) {
  try {
    const v = await fn();
    check(true, name);
    return v;
  } catch (e) {
    check(false, name, oneLine(e));
    throw new Skip(name);
  }
}

class Skip extends Error {}

function oneLine(e) {
  return String(e && e.message ? e.message : e)
    .split('\n')[0]
    .slice(0, 300);
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------------ processes

const children = new Set();

/** A long-running `overlay --json ...`: its JSON lines, and waits on them. */
function daemon(name, args) {
  note(`[${name}] $ ${OVERLAY} --json ${args.join(' ')}`);
  const child = spawn(OVERLAY, ['--json', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const events = [];
  const waiters = [];
  let gone = null;
  const fail = (why) => {
    gone = why;
    for (const w of waiters.splice(0)) w.reject(new Error(`${name} ${why} before ${w.what}`));
  };
  child.on('error', (e) => fail(`could not start (${e.message})`));
  child.on('exit', (code, signal) => {
    note(`[${name}] exited ${code ?? signal}`);
    children.delete(child);
    fail(`exited (${code ?? signal})`);
  });
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    note(`[${name}] ${line}`);
    let ev;
    try {
      ev = JSON.parse(line);
    } catch {
      return;
    }
    events.push(ev);
    for (const w of [...waiters]) {
      if (w.pred(ev)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(ev);
      }
    }
  });
  readline.createInterface({ input: child.stderr }).on('line', (line) => note(`[${name} stderr] ${line}`));
  return {
    name,
    child,
    /** The first line (already printed or to come) whose "event" is `event`. */
    event(event, ms = 20_000) {
      const pred = (e) => e && e.event === event;
      const seen = events.find(pred);
      if (seen) return Promise.resolve(seen);
      if (gone) return Promise.reject(new Error(`${name} ${gone} before ${event}`));
      const p = new Promise((resolve, reject) => waiters.push({ pred, resolve, reject, what: event }));
      return withTimeout(p, ms, `${name}: waiting for the "${event}" line`);
    },
  };
}

/** A short `overlay --json ...` command: its exit code, output, and last JSON line. */
function command(args, ms = 30_000) {
  note(`$ ${OVERLAY} --json ${args.join(' ')}`);
  return new Promise((resolve) => {
    const child = spawn(OVERLAY, ['--json', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    const done = (code) => {
      clearTimeout(timer);
      children.delete(child);
      note(`  -> exit ${code}\n  stdout: ${stdout.trim()}\n  stderr: ${stderr.trim()}`);
      const lines = stdout
        .split('\n')
        .map((l) => {
          try {
            return JSON.parse(l);
          } catch {
            return null;
          }
        })
        .filter(Boolean);
      resolve({ code, stdout, stderr, json: lines[lines.length - 1] || null });
    };
    child.on('error', (e) => {
      stderr += e.message;
      done(-1);
    });
    child.on('exit', (code, signal) => done(code ?? signal));
  });
}

/** SIGTERM (a graceful leave), then SIGKILL if it takes too long. */
async function stop(child, graceMs = 6000) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = await Promise.race([exited.then(() => 'exited'), sleep(graceMs).then(() => 'late')]);
  if (t === 'late') {
    child.kill('SIGKILL');
    await Promise.race([exited, sleep(2000)]);
  }
}

async function stopAll(list) {
  await Promise.all([...list].map((c) => stop(c)));
}

// ------------------------------------------------------------------ the page's server

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ts': 'text/plain; charset=utf-8',
  '.map': 'application/json',
};

function serve(dir) {
  const server = http.createServer((req, res) => {
    let file;
    try {
      const url = new URL(req.url, 'http://localhost');
      let p = decodeURIComponent(url.pathname);
      if (p.endsWith('/')) p += 'index.html';
      file = path.resolve(dir, `.${path.posix.normalize(p)}`);
    } catch {
      res.writeHead(400).end();
      return;
    }
    if (file !== dir && !file.startsWith(dir + path.sep)) {
      res.writeHead(403).end();
      return;
    }
    fs.readFile(file, (err, body) => {
      if (err) {
        note(`[http] 404 ${req.url}`);
        res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
        return;
      }
      res.writeHead(200, {
        'Content-Type': MIME[path.extname(file)] || 'application/octet-stream',
        'Cache-Control': 'no-store',
      });
      res.end(body);
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

// ------------------------------------------------------------------ the page

/** A fresh page with its console watched; errors are collected for a check. */
async function openPage(context, base, wsAddr, label) {
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  const errors = [];
  page.on('console', (m) => {
    note(`[${label} console.${m.type()}] ${m.text()}`);
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => {
    note(`[${label} pageerror] ${e.stack || e}`);
    errors.push(String(e.message || e));
  });
  page.on('crash', () => errors.push('the page crashed'));
  await page.goto(`${base}/index.html?ws=${encodeURIComponent(`ws://${wsAddr}`)}`, { waitUntil: 'load', timeout: 20_000 });
  await page.waitForFunction(() => window.overlay && window.overlay.ready, null, { timeout: 15_000 });
  await withTimeout(page.evaluate(() => window.overlay.ready.then(() => true)), 20_000, 'the WASM module');
  return { page, errors };
}

async function waitPhase(page, phase, ms) {
  try {
    await page.waitForFunction((p) => document.querySelector('#status')?.textContent === p, phase, { timeout: ms });
  } catch {
    const now = await page.locator('#status').textContent().catch(() => '?');
    throw new Error(`#status is "${now}", not "${phase}", after ${ms} ms`);
  }
}

const cssString = (s) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

/**
 * Waits for the log entry that finishes the command on `key`: `event` (returns its data
 * attributes and text), or `failed` / `error` (throws with its text).
 */
async function waitLog(page, event, key, ms = 20_000) {
  const k = cssString(key);
  const sel = `#log li[data-event=${event}][data-key=${k}], #log li[data-event=failed][data-key=${k}], #log li[data-event=error][data-key=${k}]`;
  const li = page.locator(sel).last();
  try {
    await li.waitFor({ state: 'attached', timeout: ms });
  } catch {
    const tail = await page.locator('#log li').evaluateAll((l) => l.slice(-4).map((x) => `${x.dataset.event}: ${x.textContent}`)).catch(() => []);
    throw new Error(`no "${event}" for ${JSON.stringify(key)} within ${ms} ms; log ends: ${tail.join(' | ')}`);
  }
  const got = await li.evaluate((x) => ({ ...x.dataset, text: x.textContent }));
  if (got.event !== event) throw new Error(`${got.event}: ${got.text}`);
  return got;
}

async function pageCommand(page, button, key, value) {
  await page.fill('#key', key);
  if (value !== undefined) await page.fill('#value', value);
  await page.click(`#${button}`);
}

/** Polls `fn` in the page until it returns a truthy value. */
async function until(page, fn, arg, ms, what) {
  try {
    const h = await page.waitForFunction(fn, arg, { timeout: ms, polling: 250 });
    return await h.jsonValue();
  } catch {
    throw new Error(`${what} not within ${ms} ms`);
  }
}

const token = () => randomBytes(3).toString('hex');
const sha1Hex = (b) => createHash('sha1').update(b).digest('hex');
const bencodeString = (s) => {
  const b = Buffer.from(s, 'utf8');
  return Buffer.concat([Buffer.from(`${b.length}:`), b]);
};

// ------------------------------------------------------------------ Chord

async function chord(context, base) {
  const peers = [];
  try {
    const first = daemon('chord-1', ['chord', 'join', '--bind', '127.0.0.1:0', '--ws', '127.0.0.1:0', '--stabilize-ms', '300']);
    peers.push(first.child);
    const { bridge, addrs } = await step('chord: three native peers form a ring, the first with a bridge', async () => {
      const a = (await first.event('listening')).addr;
      const bridge = (await first.event('bridge')).ws;
      const addrs = [a];
      for (const n of [2, 3]) {
        const p = daemon(`chord-${n}`, ['chord', 'join', '--bind', '127.0.0.1:0', '--bootstrap', a, '--stabilize-ms', '300']);
        peers.push(p.child);
        addrs.push((await p.event('listening')).addr);
        await p.event('joined');
      }
      return { bridge, addrs };
    });

    const { page, errors } = await step('chord: the page loads and initialises the WASM module', () => openPage(context, base, bridge, 'chord'));
    try {
      await step('chord: the tab joins the ring through the bridge (#status = member)', async () => {
        await page.click('#connect');
        await waitPhase(page, 'member', 30_000);
      });

      // the tab puts, the CLI gets
      const k1 = `tab-${token()}`;
      const v1 = `from the tab ✓ ${token()}`;
      await step('chord: the tab puts a key (putDone)', async () => {
        await pageCommand(page, 'put', k1, v1);
        await waitLog(page, 'putDone', k1);
      });
      const got = await command(['chord', 'get', k1, '--via', addrs[1]]);
      check(got.code === 0 && got.json && got.json.value === v1, 'chord: `overlay chord get` reads the value the tab put', `exit ${got.code}, got ${JSON.stringify(got.json && got.json.value)}${got.stderr ? `, ${got.stderr.trim()}` : ''}`);

      // the CLI puts, the tab gets
      const k2 = `cli-${token()}`;
      const v2 = `from the CLI ✓ ${token()}`;
      const put = await command(['chord', 'put', k2, v2, '--via', addrs[2]]);
      check(put.code === 0, '`overlay chord put` stores a key through a native peer', `exit ${put.code}: ${put.stderr.trim()}`);
      try {
        await pageCommand(page, 'get', k2);
        const entry = await waitLog(page, 'getDone', k2);
        check(entry.value === v2, 'chord: the tab gets the value the CLI put', `got ${JSON.stringify(entry.value)}: ${entry.text}`);
      } catch (e) {
        check(false, 'chord: the tab gets the value the CLI put', oneLine(e));
      }

      // a lookup, checked against the CLI's
      try {
        const k3 = `lookup-${token()}`;
        let entry;
        let cli;
        for (let attempt = 0; attempt < 3; attempt++) {
          await pageCommand(page, 'lookup', k3);
          entry = await waitLog(page, 'lookupDone', k3);
          cli = await command(['chord', 'lookup', k3, '--via', addrs[0]]);
          if (cli.json && cli.json.owner && cli.json.owner.addr === entry.owner) break;
          await sleep(1500); // the ring may still be settling
        }
        check(
          cli.json && cli.json.owner && entry.owner === cli.json.owner.addr,
          'chord: the tab\'s lookup finds the owner `overlay chord lookup` finds',
          `tab: ${entry && entry.owner}, CLI: ${cli && cli.json && cli.json.owner && cli.json.owner.addr}`,
        );
      } catch (e) {
        check(false, 'chord: the tab\'s lookup finds the owner `overlay chord lookup` finds', oneLine(e));
      }

      // the lookup's drawing: fingers from the tab, one arrow per node the lookup asked
      try {
        // A key the tab's successor does not own, so that the lookup asks someone.
        let hops = 0;
        for (let i = 0; i < 12 && hops === 0; i++) {
          const k = `path-${token()}`;
          await pageCommand(page, 'lookup', k);
          const entry = await waitLog(page, 'lookupDone', k);
          hops = Number((/· (\d+) hops?/.exec(entry.text) || [])[1]);
        }
        if (!(hops >= 1)) throw new Error('every lookup was answered without asking a node');
        const drawn = await until(
          page,
          (want) => {
            const fingers = document.querySelectorAll('#view svg .chord-finger').length;
            const arrows = document.querySelectorAll('#view svg .hop-g').length;
            return fingers >= 1 && arrows === want ? { fingers, arrows } : null;
          },
          hops,
          10_000,
          `fingers and ${hops} path arrows`,
        );
        check(true, `chord: the tab's fingers (${drawn.fingers}) and its lookup's path (${drawn.arrows} arrows = hops) are drawn`);
      } catch (e) {
        check(false, "chord: the tab's fingers and its lookup's path are drawn", oneLine(e));
      }

      // a full member: a key in the tab's arc (predecessor, tab] is stored at the tab, by
      // the CLI's put routed through the ring, and served from it (Chord section 4.2)
      try {
        const st = await page.evaluate(() => window.overlay.status());
        const inArc = (k, from, to) => (from < to ? k > from && k <= to : k > from || k <= to);
        const [pred, self] = [BigInt(`0x${st.predecessor.id}`), BigInt(`0x${st.node.id}`)];
        let key = null;
        for (let i = 0; i < 1_000_000 && key === null; i++) {
          const k = `owned-${i}`;
          if (inArc(BigInt(`0x${ChordNode.keyId(Buffer.from(k))}`), pred, self)) key = k;
        }
        const stored = await command(['chord', 'put', key, 'kept by the tab', '--via', addrs[2]]);
        const owner = stored.json && stored.json.owner && stored.json.owner.addr;
        const keys = await until(page, (n) => window.overlay.status().keys > n && window.overlay.status().keys, st.keys, 10_000, 'the tab to hold one more key');
        const back = await command(['chord', 'get', key, '--via', addrs[1]]);
        check(
          owner === st.node.addr && keys > st.keys && back.json && back.json.value === 'kept by the tab',
          'chord: the tab is a full member: a key in its arc is stored at the tab and read back by the CLI',
          `owner ${owner}, tab ${st.node.addr}, keys ${st.keys} -> ${keys}, get ${JSON.stringify(back.json)}`,
        );
      } catch (e) {
        check(false, 'chord: the tab is a full member: a key in its arc is stored at the tab and read back by the CLI', oneLine(e));
      }

      // the drawing
      try {
        const n = await until(
          page,
          () => {
            const nodes = document.querySelectorAll('#view svg .node');
            const self = document.querySelectorAll('#view svg .node.self');
            const titled = [...nodes].every((e) => e.querySelector('title')?.textContent);
            return nodes.length >= 4 && self.length === 1 && titled ? nodes.length : 0;
          },
          null,
          20_000,
          'at least 4 titled .node elements and one .self',
        );
        check(true, `chord: the ring shows ${n} nodes (the three native peers and the tab), the tab highlighted`);
      } catch (e) {
        const count = await page.locator('#view svg .node').count().catch(() => -1);
        check(false, 'chord: the ring shows the three native peers and the tab', `${oneLine(e)}; ${count} .node`);
      }
      const titles = await page.locator('#view svg .node > title').allTextContents().catch(() => []);
      const drawn = addrs.every((a) => titles.some((t) => t.startsWith(a)));
      check(drawn, 'chord: every native peer is drawn with its address as title', `titles: ${titles.map((t) => t.split('\n')[0]).join(', ')}`);

      await sleep(1200); // let the transitions settle
      await page.screenshot({ path: path.join(OUT_DIR, 'chord.png'), timeout: 15_000 });
      note(`screenshot ${path.join(OUT_DIR, 'chord.png')}`);
      check(errors.length === 0, 'chord: no console errors on the page', errors.slice(0, 3).join(' | '));
    } finally {
      await page.close().catch(() => {});
    }
  } catch (e) {
    if (!(e instanceof Skip)) check(false, 'chord: the test ran to its end', oneLine(e));
  } finally {
    await stopAll(peers);
  }
}

// ------------------------------------------------------------------ Mainline DHT

async function dht(context, base) {
  const nodes = [];
  try {
    const first = daemon('dht-1', ['dht', 'start', '--bind', '127.0.0.1:0', '--ws', '127.0.0.1:0']);
    nodes.push(first.child);
    const { bridge, addrs, ids } = await step('dht: three native nodes, the first with a bridge', async () => {
      const listening = await first.event('listening');
      const a = listening.addr;
      const bridge = (await first.event('bridge')).ws;
      const addrs = [a];
      const ids = new Map([[a, listening.id]]);
      for (const n of [2, 3]) {
        const p = daemon(`dht-${n}`, ['dht', 'start', '--bind', '127.0.0.1:0', '--bootstrap', a]);
        nodes.push(p.child);
        const l = await p.event('listening');
        addrs.push(l.addr);
        ids.set(l.addr, l.id);
        await p.event('bootstrapped');
      }
      return { bridge, addrs, ids };
    });

    const { page, errors } = await step('dht: the page loads and initialises the WASM module', () => openPage(context, base, bridge, 'dht'));
    try {
      await step('dht: the tab bootstraps through the bridge (#status = bootstrapped)', async () => {
        await page.click('#connect');
        await waitPhase(page, 'bootstrapped', 30_000);
      });

      // the tab puts a BEP 44 item, the CLI gets it
      const v1 = `tab item ✓ ${token()}`;
      const t1 = sha1Hex(bencodeString(v1));
      await step('dht: the tab puts a BEP 44 immutable item (stored, target = SHA-1 of the bencoded value)', async () => {
        await pageCommand(page, 'put', '', v1);
        const entry = await waitLog(page, 'stored', t1, 30_000);
        if (!(Number(entry.stored) >= 1)) throw new Error(`stored on ${entry.stored} nodes`);
      });
      const got = await command(['dht', 'get', t1, '--via', addrs[1]]);
      check(got.code === 0 && got.json && got.json.value === v1, 'dht: `overlay dht get` reads the item the tab put', `exit ${got.code}, got ${JSON.stringify(got.json && got.json.value)}${got.stderr ? `, ${got.stderr.trim()}` : ''}`);

      // the CLI puts, the tab gets
      const v2 = `cli item ✓ ${token()}`;
      const put = await command(['dht', 'put', v2, '--via', addrs[2]]);
      const t2 = put.json && put.json.key;
      check(put.code === 0 && t2 === sha1Hex(bencodeString(v2)), '`overlay dht put` stores an item under SHA-1 of its bencoding', `exit ${put.code}, key ${t2}: ${put.stderr.trim()}`);
      try {
        await pageCommand(page, 'get', t2 || sha1Hex(bencodeString(v2)));
        const entry = await waitLog(page, 'item', t2 || sha1Hex(bencodeString(v2)), 30_000);
        check(entry.value === v2, 'dht: the tab gets the item the CLI put', `got ${JSON.stringify(entry.value)}: ${entry.text}`);
      } catch (e) {
        check(false, 'dht: the tab gets the item the CLI put', oneLine(e));
      }

      // a find_node lookup
      try {
        const k3 = `find ${token()}`;
        await pageCommand(page, 'lookup', k3);
        const entry = await waitLog(page, 'nodes', k3, 30_000);
        // Kademlia section 2.3: the nearest node found is the XOR-closest native node.
        const target = BigInt(`0x${entry.target}`);
        const closest = addrs.reduce((a, b) => ((BigInt(`0x${ids.get(a)}`) ^ target) <= (BigInt(`0x${ids.get(b)}`) ^ target) ? a : b));
        check(
          entry.text.includes(`nearest ${closest}`),
          `dht: the tab's find_node converges on the XOR-closest node (${entry.text.replace(/^\d\d:\d\d:\d\d/, '').trim()})`,
          `expected nearest ${closest}`,
        );
      } catch (e) {
        check(false, "dht: the tab's find_node lookup converges", oneLine(e));
      }

      // the drawing
      try {
        const n = await until(
          page,
          () => {
            const buckets = document.querySelectorAll('#view svg .bucket');
            const members = document.querySelectorAll('#view svg .bucket .node');
            const self = document.querySelectorAll('#view svg .node.self');
            const titled = [...members].every((e) => e.querySelector('title')?.textContent);
            return buckets.length >= 1 && members.length >= 3 && self.length === 1 && titled ? members.length : 0;
          },
          null,
          20_000,
          'bucket rows holding the three native nodes, titled, and one .self',
        );
        check(true, `dht: the routing table is drawn by bucket (${n} nodes)`);
      } catch (e) {
        const count = await page.locator('#view svg .bucket .node').count().catch(() => -1);
        check(false, 'dht: the routing table is drawn by bucket', `${oneLine(e)}; ${count} nodes in buckets`);
      }

      await sleep(1200);
      await page.screenshot({ path: path.join(OUT_DIR, 'dht.png'), timeout: 15_000 });
      note(`screenshot ${path.join(OUT_DIR, 'dht.png')}`);
      // a full node: native nodes query the tab, and it answers (BEP 5)
      const answered = await page.evaluate(() => window.overlay.status().answered).catch(() => 0);
      check(answered > 0, `dht: the tab answers native nodes' queries (${answered} answered)`);
      check(errors.length === 0, 'dht: no console errors on the page', errors.slice(0, 3).join(' | '));
    } finally {
      await page.close().catch(() => {});
    }
  } catch (e) {
    if (!(e instanceof Skip)) check(false, 'dht: the test ran to its end', oneLine(e));
  } finally {
    await stopAll(nodes);
  }
}

// ------------------------------------------------------------------ main

async function main() {
  let server = null;
  let browser = null;
  const watchdog = setTimeout(() => {
    check(false, `the browser test finished within ${TOTAL_MS / 1000} s`);
    for (const c of children) c.kill('SIGKILL');
    if (browser) browser.process()?.kill('SIGKILL');
    console.log(`browser: ${passed} passed, ${failed} failed`);
    process.exit(1);
  }, TOTAL_MS);
  try {
    if (!fs.existsSync(OVERLAY)) throw new Error(`no overlay binary at ${OVERLAY} (set OVERLAY)`);
    if (!fs.existsSync(path.join(WWW, 'pkg', 'overlay_wasm.js'))) throw new Error(`no ${path.join(WWW, 'pkg', 'overlay_wasm.js')}: build overlay-wasm first`);
    server = await serve(WWW);
    const base = `http://127.0.0.1:${server.address().port}`;
    note(`serving ${WWW} at ${base}`);
    browser = await step('chromium starts headless', () =>
      chromium.launch({
        executablePath: CHROMIUM,
        timeout: 60_000,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      }),
    );
    const context = await browser.newContext({ viewport: VIEWPORT, deviceScaleFactor: 1 });
    await chord(context, base);
    await dht(context, base);
    await context.close().catch(() => {});
  } catch (e) {
    if (!(e instanceof Skip)) check(false, 'the browser test ran', oneLine(e));
  } finally {
    if (browser) await withTimeout(browser.close(), 15_000, 'closing chromium').catch(() => browser.process()?.kill('SIGKILL'));
    if (server) {
      server.closeAllConnections?.();
      await new Promise((r) => server.close(r));
    }
    await stopAll(children);
    clearTimeout(watchdog);
  }
  console.log(`browser: ${passed} passed, ${failed} failed`);
  note(`browser: ${passed} passed, ${failed} failed`);
  fs.closeSync(logFile);
  // Exit now rather than when the event loop drains: a stray handle must not hang the test.
  process.exit(failed > 0 || passed === 0 ? 1 : 0);
}

await main();
