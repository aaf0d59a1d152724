// The page: one overlay peer running in this tab (overlay-wasm), talking UDP through the
// node's WebSocket bridge, and a drawing of the overlay as that peer sees it.
//
// The peer is sans-IO: every input (a datagram, a command, a timer) is followed by
// pollOutput(now) until it says `wait`; transmits go out as bridge frames, events go to
// the log, and `wait.untilUs` arms the one timer.

import init, { ChordNode, DhtNode, bridgeFrame, bridgeUnframe, sha1 } from './pkg/overlay_wasm.js';

const $ = (id) => document.getElementById(id);
const SVGNS = 'http://www.w3.org/2000/svg';
const utf8 = new TextEncoder();
const text = new TextDecoder('utf-8', { fatal: false });
const nowUs = () => Math.round(performance.now() * 1000);
const TWO32 = 4294967296;
const DEFAULT_WS = 'ws://127.0.0.1:7700';
const HELLO_TIMEOUT_MS = 8000;

// ---------------------------------------------------------------- state

const state = {
  ws: null,
  node: null,
  selfId: null, // this peer's id (hex), kept as it changes (a DHT's BEP 42 new id)
  protocol: null, // "chord" | "dht"
  hello: null,
  timer: null,
  dhtPhase: null, // "bootstrapping" | "bootstrapped" | "failed"
  startQuery: null, // the join / bootstrap query
  pending: new Map(), // query id -> {kind, key, value, target}
  track: null, // the last lookup traced: {query, kind, keyText, match, hops: [addr], done, owner}
  keys: new Map(), // chord: key id -> {text, owner}
  ids: new Map(), // address -> hex id (chord: computed; dht: learned from the wire)
  packets: [],
  badFrames: 0,
  lastCounters: {},
};

const ready = init().then(() => undefined);

window.overlay = {
  get node() {
    return state.node;
  },
  get protocol() {
    return state.protocol;
  },
  status() {
    if (!state.node) return { phase: 'disconnected' };
    return { phase: phaseOf(), ...state.node.status() };
  },
  ready,
};

// ---------------------------------------------------------------- helpers

const isHex40 = (s) => /^[0-9a-fA-F]{40}$/.test(s);

/** The first 32 bits of a hex id as a fraction of the id space. */
function frac(id) {
  return parseInt(id.slice(0, 8), 16) / TWO32;
}

function shortId(id) {
  return id ? `${id.slice(0, 8)}…` : '—';
}

function portOf(addr) {
  const i = addr.lastIndexOf(':');
  return i < 0 ? addr : addr.slice(i + 1);
}

function hostOf(addr) {
  const i = addr.lastIndexOf(':');
  return i < 0 ? '' : addr.slice(0, i);
}

/** A Chord node's id, as every node derives it from its address (cached). */
function chordIdOf(addr) {
  let id = state.ids.get(addr);
  if (id) return id;
  try {
    id = ChordNode.nodeId(addr);
  } catch {
    return null;
  }
  state.ids.set(addr, id);
  return id;
}

/** A bencoded byte string: `<len>:<bytes>`. */
function bencodeString(bytes) {
  const head = utf8.encode(`${bytes.length}:`);
  const out = new Uint8Array(head.length + bytes.length);
  out.set(head);
  out.set(bytes, head.length);
  return out;
}

/** What a datagram is ({message, key, sender}), decoded by the peer's own decoder. */
function describe(datagram) {
  return (state.protocol === 'chord' ? ChordNode.describe(datagram) : DhtNode.describe(datagram)) ?? null;
}

/** Learns DHT ids from the wire: the sender's id, and compact node infos in replies. */
/** Ids remembered for drawing at most; a long-lived tab on a large DHT hears of many. */
const MAX_IDS = 4096;

function learnDht(from, d) {
  if (!d) return;
  if (state.ids.size > MAX_IDS) state.ids.clear();
  if (d.sender && from) state.ids.set(from, d.sender);
  for (const n of d.nodes) if (!state.ids.has(n.addr)) state.ids.set(n.addr, n.id);
}

function idOf(addr) {
  return state.protocol === 'chord' ? chordIdOf(addr) : state.ids.get(addr) || null;
}

// ---------------------------------------------------------------- the log

function clock() {
  const d = new Date();
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((x) => String(x).padStart(2, '0')).join(':');
}

/** Appends a log entry: parts are strings, or [class, text] for highlighted spans. */
function log(event, key, parts, extra = {}) {
  const li = document.createElement('li');
  li.dataset.event = event;
  li.dataset.key = key ?? '';
  for (const [k, v] of Object.entries(extra)) if (v !== undefined && v !== null) li.dataset[k] = v;
  const t = document.createElement('span');
  t.className = 't';
  t.textContent = clock();
  li.append(t);
  for (const p of parts) {
    if (Array.isArray(p)) {
      const s = document.createElement('span');
      s.className = p[0];
      s.textContent = p[1];
      li.append(s);
    } else {
      li.append(document.createTextNode(p));
    }
  }
  const list = $('log');
  list.append(li);
  while (list.children.length > 200) list.firstElementChild.remove();
  li.scrollIntoView({ block: 'nearest' });
}

const q = (s) => `“${s}”`;
const hopsText = (h) => (h === undefined || h === null ? '' : ` · ${h} hop${h === 1 ? '' : 's'}`);
const statsText = (s) => {
  if (!s || typeof s !== 'object') return '';
  const bits = [];
  if (s.messages !== undefined) bits.push(`${Number(s.messages)} requests`);
  if (s.rounds !== undefined) bits.push(`${Number(s.rounds)} rounds`);
  return bits.length ? ` · ${bits.join(', ')}` : '';
};

function errorText(e) {
  return `${e && e.code ? e.code : 'Error'}: ${e && e.message ? e.message : e}`;
}

// ---------------------------------------------------------------- the pump

function pump() {
  const node = state.node;
  if (!node) return;
  const now = nowUs();
  let waited = false;
  try {
    for (let n = 0; n < 10000; n++) {
      const out = node.pollOutput(now);
      if (out.type === 'transmit') transmit(out.to, out.datagram);
      else if (out.type === 'event') onEvent(out.event);
      else {
        arm(out.untilUs);
        waited = true;
        break;
      }
    }
  } catch (e) {
    // A bug, here or in the peer: say so, and keep the peer's timers alive.
    console.warn('overlay: the pump failed', errorText(e));
    log('error', '', ['pump: ', ['m', errorText(e)]]);
    arm(now + 1_000_000);
    return;
  }
  if (!waited) arm(now); // more to do: come back at once
  refresh();
}

/** The longest delay setTimeout honours (2^31 - 1 ms); a longer one fires at once. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

function arm(untilUs) {
  if (state.timer !== null) clearTimeout(state.timer);
  state.timer = null;
  if (untilUs === null || untilUs === undefined) return;
  const ms = Math.min(MAX_TIMEOUT_MS, Math.max(0, Math.ceil((Number(untilUs) - nowUs()) / 1000)));
  state.timer = setTimeout(() => {
    state.timer = null;
    pump();
  }, ms);
}

function transmit(to, datagram) {
  const ws = state.ws;
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(bridgeFrame(to, datagram));
  const d = describe(datagram);
  const t = state.track;
  if (t && !t.done && d && d.key && d.key === t.match && d.message === t.message) {
    if (t.hops[t.hops.length - 1] !== to) t.hops.push(to);
  }
  launchPacket(to, d, true);
}

function onFrame(data) {
  if (!state.node) return;
  let frame;
  try {
    frame = bridgeUnframe(new Uint8Array(data));
  } catch (e) {
    state.badFrames++;
    console.warn('overlay: a malformed bridge frame', errorText(e));
    return;
  }
  state.node.handleDatagram(nowUs(), frame.from, frame.datagram);
  const d = describe(frame.datagram);
  if (state.protocol === 'dht') learnDht(frame.from, d);
  launchPacket(frame.from, d, false);
  pump();
}

// ---------------------------------------------------------------- events

function nodeText(n) {
  return n ? n.addr : '?';
}

function onEvent(ev) {
  const p = state.pending.get(ev.query);
  if (p) state.pending.delete(ev.query);
  const t = state.track;
  if (t && t.query === ev.query && ev.type !== 'newId') {
    t.done = true;
    if (ev.owner) t.owner = ev.owner.addr;
    if (ev.nodes && Array.isArray(ev.nodes)) t.found = ev.nodes.map((n) => n.addr);
  }
  if (state.protocol === 'chord') onChordEvent(ev, p);
  else onDhtEvent(ev, p);
}

function onChordEvent(ev, p) {
  const key = p ? p.key : '';
  switch (ev.type) {
    case 'joined':
      log('joined', '', ['joined the ring; successor ', ['v', nodeText(ev.successor)]]);
      break;
    case 'putDone':
      if (p) state.keys.set(ev.key, { text: key, owner: ev.owner.addr });
      log('putDone', key, ['put ', ['k', q(key)], ' = ', ['v', q(p ? p.value : '')], ` → ${nodeText(ev.owner)}${hopsText(ev.hops)}`], {
        value: p ? p.value : '',
        owner: ev.owner ? ev.owner.addr : '',
      });
      break;
    case 'getDone': {
      const value = ev.value ? text.decode(ev.value) : null;
      if (value === null) {
        log('getDone', key, ['get ', ['k', q(key)], ': ', ['m', 'no value'], hopsText(ev.hops)], { found: 'false' });
      } else {
        if (!state.keys.has(ev.key)) state.keys.set(ev.key, { text: key, owner: null });
        log('getDone', key, ['get ', ['k', q(key)], ' = ', ['v', q(value)], hopsText(ev.hops)], { value, found: 'true' });
      }
      break;
    }
    case 'lookupDone': {
      const k = state.keys.get(ev.key);
      if (k) k.owner = ev.owner.addr;
      log('lookupDone', key, ['lookup ', ['k', q(key)], ` → owner ${nodeText(ev.owner)}${hopsText(ev.hops)}`], {
        owner: ev.owner ? ev.owner.addr : '',
      });
      break;
    }
    case 'failed':
      if (ev.query === state.startQuery) log('failed', '', ['joining failed: ', ['m', ev.reason]], { reason: ev.reason });
      else log('failed', key, [`${p ? p.kind : 'request'} `, ['k', q(key)], ' failed: ', ['m', ev.reason]], { reason: ev.reason });
      break;
    case 'left':
      log('left', '', ['left the ring']);
      break;
    default:
      log(ev.type, key, [ev.type]);
  }
}

/** A BEP 44 item's text: the page puts bencoded strings (`<len>:<text>`); other values
 * are shown as they are. */
function itemText(value) {
  if (!value) return null;
  const all = text.decode(value);
  const m = /^(\d+):/.exec(all);
  return m && value.length === m[0].length + Number(m[1]) ? text.decode(value.subarray(m[0].length)) : all;
}

function onDhtEvent(ev, p) {
  const key = p ? p.key : '';
  switch (ev.type) {
    case 'bootstrapped':
      if (ev.query === state.startQuery) state.dhtPhase = 'bootstrapped';
      log('bootstrapped', '', [`bootstrapped: ${Number(ev.nodes)} nodes in the routing table`]);
      break;
    case 'nodes': {
      const list = Array.isArray(ev.nodes) ? ev.nodes : [];
      log('nodes', key, ['find_node ', ['k', shortId(ev.target)], ` → ${list.length} closest`, list[0] ? `, nearest ${list[0].addr}` : '', statsText(ev.stats)], {
        target: ev.target,
      });
      break;
    }
    case 'item': {
      const value = itemText(ev.value);
      if (value === null) log('item', key, ['get ', ['k', shortId(ev.target)], ': ', ['m', 'no item'], statsText(ev.stats)], { found: 'false', target: ev.target });
      else log('item', key, ['get ', ['k', shortId(ev.target)], ' = ', ['v', q(value)], statsText(ev.stats)], { value, found: 'true', target: ev.target });
      break;
    }
    case 'stored':
      log('stored', key, ['put ', ['v', q(p ? p.value : '')], ' as ', ['k', ev.target], ` on ${Number(ev.stored)} nodes${statsText(ev.stats)}`], {
        value: p ? p.value : '',
        target: ev.target,
        stored: String(Number(ev.stored)),
      });
      break;
    case 'peers':
      log('peers', key, [`${ev.peers.length} peers of `, ['k', shortId(ev.infoHash)], statsText(ev.stats)]);
      break;
    case 'announced':
      log('announced', key, ['announced ', ['k', shortId(ev.infoHash)], ` to ${Number(ev.stored)} nodes`]);
      break;
    case 'newId':
      state.selfId = ev.id;
      log('newId', '', ['new node id ', ['k', shortId(ev.id)], ev.external ? ` (external address ${ev.external})` : '']);
      break;
    case 'failed':
      if (ev.query === state.startQuery) {
        state.dhtPhase = 'failed';
        log('failed', '', ['bootstrap failed: ', ['m', ev.reason]], { reason: ev.reason });
      } else {
        log('failed', key, [`${p ? p.kind : 'request'} `, ['k', key.length === 40 ? shortId(key) : q(key)], ' failed: ', ['m', ev.reason]], { reason: ev.reason });
      }
      break;
    default:
      log(ev.type, key, [ev.type]);
  }
}

// ---------------------------------------------------------------- commands

function command(kind) {
  const node = state.node;
  if (!node) return;
  const keyText = $('key').value;
  const valueText = $('value').value;
  const now = nowUs();
  try {
    if (state.protocol === 'chord') chordCommand(node, now, kind, keyText, valueText);
    else dhtCommand(node, now, kind, keyText, valueText);
  } catch (e) {
    console.warn('overlay:', kind, errorText(e));
    log('error', keyText, [`${kind} `, ['k', q(keyText)], ': ', ['m', errorText(e)]], { code: e && e.code ? e.code : 'Error' });
  }
  pump();
}

function chordCommand(node, now, kind, keyText, valueText) {
  const key = utf8.encode(keyText);
  let query;
  if (kind === 'put') query = node.put(now, key, utf8.encode(valueText));
  else if (kind === 'get') query = node.get(now, key);
  else query = node.lookup(now, key);
  const keyId = ChordNode.keyId(key);
  state.pending.set(query, { kind, key: keyText, value: valueText });
  state.track = { query, kind, keyText, match: keyId, message: 'find_successor', hops: [], done: false, owner: null };
}

/** A DHT target from the key field: 40 hex digits as given, else SHA-1 of `how`(text). */
function targetOf(keyText, how) {
  const t = keyText.trim();
  if (isHex40(t)) return t.toLowerCase();
  return sha1(how(t));
}

function dhtCommand(node, now, kind, keyText, valueText) {
  if (kind === 'put') {
    const value = utf8.encode(valueText);
    const r = node.put(now, bencodeString(value));
    state.pending.set(r.query, { kind, key: r.target, value: valueText });
    state.track = { query: r.query, kind, keyText: r.target, match: r.target, message: 'get', hops: [], done: false };
    $('key').value = r.target;
    return;
  }
  if (kind === 'get') {
    const target = targetOf(keyText, (t) => bencodeString(utf8.encode(t)));
    const query = node.get(now, target);
    state.pending.set(query, { kind, key: keyText.trim(), target });
    state.track = { query, kind, keyText, match: target, message: 'get', hops: [], done: false };
    return;
  }
  const target = targetOf(keyText, (t) => utf8.encode(t));
  const query = node.findNode(now, target);
  state.pending.set(query, { kind, key: keyText.trim(), target });
  state.track = { query, kind, keyText, match: target, message: 'find_node', hops: [], done: false };
}

// ---------------------------------------------------------------- connecting

function setConn(s, label) {
  const el = $('conn');
  el.dataset.state = s;
  el.textContent = label;
}

function setButtons(on) {
  for (const id of ['put', 'get', 'lookup']) $(id).disabled = !on;
}

function teardown() {
  if (state.timer !== null) clearTimeout(state.timer);
  state.timer = null;
  const ws = state.ws;
  state.ws = null;
  if (ws) {
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    try {
      ws.close();
    } catch {
      /* closing anyway */
    }
  }
  if (state.node) {
    try {
      state.node.free();
    } catch {
      /* already gone */
    }
  }
  state.node = null;
  state.selfId = null;
  state.protocol = null;
  state.hello = null;
  state.dhtPhase = null;
  state.dhtRows = 0;
  state.startQuery = null;
  state.pending.clear();
  state.track = null;
  state.keys.clear();
  state.ids.clear();
  setButtons(false);
}

async function connect() {
  await ready;
  teardown();
  const url = $('bridge-url').value.trim() || DEFAULT_WS;
  const params = new URLSearchParams(location.search);
  params.set('ws', url);
  history.replaceState(null, '', `${location.pathname}?${params}`);
  setConn('connecting', 'connecting…');
  let ws;
  try {
    ws = new WebSocket(url);
  } catch (e) {
    setConn('error', 'bad URL');
    log('error', '', ['cannot open ', ['v', url], ': ', ['m', String(e.message || e)]]);
    return;
  }
  ws.binaryType = 'arraybuffer';
  state.ws = ws;
  const helloTimer = setTimeout(() => {
    if (state.ws === ws && !state.node) {
      log('error', '', ['no hello from the bridge within ', `${HELLO_TIMEOUT_MS / 1000} s`]);
      setConn('error', 'no hello');
      ws.close();
    }
  }, HELLO_TIMEOUT_MS);
  ws.onopen = () => setConn('connecting', 'waiting for hello…');
  ws.onerror = () => {
    if (state.ws === ws) setConn('error', 'connection failed');
  };
  ws.onclose = () => {
    clearTimeout(helloTimer);
    if (state.ws !== ws) return;
    setConn('closed', 'bridge closed');
    if (state.timer !== null) clearTimeout(state.timer);
    state.timer = null;
    setButtons(false);
    log('closed', '', ['the bridge closed the connection']);
    refresh();
  };
  ws.onmessage = (ev) => {
    if (state.ws !== ws) return;
    if (typeof ev.data === 'string') {
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        console.warn('overlay: a text message that is not JSON', ev.data);
        return;
      }
      if (msg && msg.type === 'hello' && !state.node) {
        clearTimeout(helloTimer);
        startPeer(msg);
      }
      return;
    }
    onFrame(ev.data);
  };
}

function startPeer(hello) {
  state.hello = hello;
  state.protocol = hello.protocol === 'dht' ? 'dht' : 'chord';
  const seed = crypto.getRandomValues(new Uint32Array(1))[0];
  const now = nowUs();
  try {
    if (state.protocol === 'chord') {
      state.node = new ChordNode(hello.addr, seed);
      state.selfId = state.node.status().node.id;
      state.ids.set(hello.addr, state.selfId);
      state.startQuery = state.node.join(now, hello.peer);
    } else {
      state.node = new DhtNode(hello.addr, seed);
      state.selfId = state.node.status().node.id;
      state.dhtPhase = 'bootstrapping';
      state.startQuery = state.node.bootstrap(now, [hello.peer]);
    }
  } catch (e) {
    console.error('overlay: cannot start the peer', errorText(e));
    log('error', '', ['cannot start the peer: ', ['m', errorText(e)]]);
    return;
  }
  setConn('open', `bridge ${hello.peer}`);
  const pill = $('protocol');
  pill.textContent = state.protocol === 'chord' ? 'Chord' : 'Mainline DHT';
  pill.classList.add('on');
  log('connected', '', [`a ${state.protocol === 'chord' ? 'Chord' : 'DHT'} peer at `, ['v', hello.addr], ', via ', ['v', hello.peer]]);
  setButtons(true);
  setupDrawing();
  pump();
}

// ---------------------------------------------------------------- the side panel

function phaseOf() {
  if (!state.node) return 'disconnected';
  if (state.protocol === 'chord') return state.node.status().phase;
  return state.dhtPhase || 'idle';
}

function setCounter(id, value) {
  const el = $(id);
  const s = String(value);
  if (el.textContent !== s) {
    el.textContent = s;
    el.classList.add('bump');
    clearTimeout(el._bump);
    el._bump = setTimeout(() => el.classList.remove('bump'), 350);
  }
}

let renderQueued = false;

function refresh() {
  if (!state.node) return;
  const st = state.node.status();
  const phase = phaseOf();
  const s = $('status');
  if (s.textContent !== phase) {
    s.textContent = phase;
    s.dataset.phase = phase;
  }
  $('node-addr').textContent = st.node.addr;
  const idEl = $('node-id');
  idEl.textContent = st.node.id;
  idEl.title = st.node.id;
  setCounter('c-sent', Number(st.sent));
  setCounter('c-received', Number(st.received));
  setCounter('c-malformed', Number(st.malformed));
  if (state.protocol === 'chord') {
    setCounter('c-keys', Number(st.keys));
    $('c-keys-label').textContent = 'keys held';
  } else {
    setCounter('c-keys', Number(st.storedItems) + Number(st.storedPeers));
    $('c-keys-label').textContent = 'items+peers';
  }
  if (!renderQueued) {
    renderQueued = true;
    const go = () => {
      renderQueued = false;
      render();
    };
    if (document.hidden) setTimeout(go, 100);
    else requestAnimationFrame(go);
  }
}

// ---------------------------------------------------------------- the drawing

const layout = { w: 900, h: 700 };
let svg = null;
const layers = {};

function el(name, attrs = {}, parent = null) {
  const e = document.createElementNS(SVGNS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (parent) parent.append(e);
  return e;
}

function setAttrs(e, attrs) {
  for (const [k, v] of Object.entries(attrs)) {
    const s = String(v);
    if (e.getAttribute(k) !== s) e.setAttribute(k, s);
  }
}

function title(e, s) {
  let t = e.querySelector(':scope > title');
  if (!t) t = el('title', {}, e);
  if (t.textContent !== s) t.textContent = s;
}

/** Keyed update of a layer's children: new ones fade in, gone ones fade out. */
function reconcile(layer, items, keyOf, create, update) {
  const existing = new Map();
  for (const child of layer.children) if (!child.classList.contains('exit')) existing.set(child.dataset.k, child);
  const seen = new Set();
  for (const item of items) {
    const k = keyOf(item);
    if (seen.has(k)) continue;
    seen.add(k);
    let e = existing.get(k);
    if (!e) {
      e = create(item);
      e.dataset.k = k;
      e.classList.add('enter');
      layer.append(e);
    }
    update(e, item);
  }
  for (const [k, e] of existing) {
    if (seen.has(k)) continue;
    e.classList.remove('node', 'self');
    e.classList.add('exit');
    setTimeout(() => e.remove(), 500);
  }
}

const CHORD_COLORS = {
  find_successor: '#fb923c',
  successors: '#fdba74',
  closer: '#fdba74',
  get_state: '#5eead4',
  state: '#99f6e4',
  notify: '#7dd3fc',
  ping: '#64748b',
  pong: '#64748b',
  store: '#f472b6',
  stored: '#f9a8d4',
  fetch: '#e879f9',
  fetched: '#f0abfc',
  leave: '#f87171',
};
const DHT_COLORS = {
  ping: '#64748b',
  find_node: '#fb923c',
  get_peers: '#facc15',
  announce_peer: '#a78bfa',
  get: '#5eead4',
  put: '#f472b6',
  response: '#7dd3fc',
  error: '#f87171',
};

function packetColor(d) {
  const table = state.protocol === 'chord' ? CHORD_COLORS : DHT_COLORS;
  return (d && table[d.message]) || '#94a3b8';
}

function legendItems() {
  if (state.protocol === 'chord') {
    return [
      ['dot', 'var(--self)', 'this tab'],
      ['dot', 'var(--succ)', 'successor'],
      ['line', 'var(--succ)', 'successor list'],
      ['dash', 'var(--pred)', 'predecessor'],
      ['line', 'var(--finger)', 'finger'],
      ['diamond', 'var(--key)', 'key'],
      ['line', 'var(--path)', 'lookup path'],
      ['dot', CHORD_COLORS.find_successor, 'find_successor'],
      ['dot', CHORD_COLORS.get_state, 'stabilize'],
      ['dot', CHORD_COLORS.notify, 'notify'],
      ['dot', CHORD_COLORS.store, 'store / fetch'],
      ['dot', CHORD_COLORS.ping, 'ping'],
    ];
  }
  return [
    ['dot', 'var(--self)', 'this tab'],
    ['dot', 'var(--succ)', 'routing-table node'],
    ['ring', 'var(--path)', 'queried by the last lookup'],
    ['diamond', 'var(--path)', 'lookup target'],
    ['dot', DHT_COLORS.find_node, 'find_node'],
    ['dot', DHT_COLORS.get_peers, 'get_peers'],
    ['dot', DHT_COLORS.get, 'get'],
    ['dot', DHT_COLORS.put, 'put'],
    ['dot', DHT_COLORS.ping, 'ping'],
    ['dot', DHT_COLORS.response, 'response'],
  ];
}

function setupDrawing() {
  const view = $('view');
  $('placeholder').classList.add('gone');
  if (svg) svg.remove();
  svg = el('svg', { xmlns: SVGNS, role: 'img', 'aria-label': 'overlay drawing', class: state.protocol });
  const defs = el('defs', {}, svg);
  defs.innerHTML = `
    <radialGradient id="core-glow" cx="50%" cy="50%" r="50%">
      <stop offset="0%" stop-color="#1b2b4a" stop-opacity=".55"/>
      <stop offset="70%" stop-color="#111c31" stop-opacity=".25"/>
      <stop offset="100%" stop-color="#0a0f1a" stop-opacity="0"/>
    </radialGradient>
    <linearGradient id="bucket-grad" x1="0" x2="1" y1="0" y2="0">
      <stop offset="0%" stop-color="#5eead4" stop-opacity=".28"/>
      <stop offset="100%" stop-color="#5eead4" stop-opacity=".08"/>
    </linearGradient>
    <filter id="soft" x="-20%" y="-20%" width="140%" height="140%">
      <feGaussianBlur stdDeviation="2.2" result="b"/>
      <feMerge><feMergeNode in="b"/><feMergeNode in="SourceGraphic"/></feMerge>
    </filter>
    <filter id="glow" x="-200%" y="-200%" width="500%" height="500%">
      <feGaussianBlur stdDeviation="3" result="b"/>
      <feMerge><feMergeNode in="b"/><feMergeNode in="SourceGraphic"/></feMerge>
    </filter>
    <marker id="arrow-path" viewBox="0 0 10 10" refX="8.5" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
      <path d="M0,0 L10,5 L0,10 z" fill="#fb923c"/>
    </marker>`;
  for (const name of ['base', 'arcs', 'fingers', 'queries', 'path', 'keys', 'rows', 'nodes', 'packets', 'center']) {
    layers[name] = el('g', { class: `layer-${name}` }, svg);
  }
  view.append(svg);
  const legend = $('legend');
  legend.replaceChildren(
    ...legendItems().map(([shape, color, label]) => {
      const li = document.createElement('li');
      const sw = document.createElement('span');
      sw.className = `sw ${shape}`;
      if (shape === 'line' || shape === 'dash') sw.style.borderTopColor = color;
      else if (shape === 'ring') sw.style.borderColor = color;
      else sw.style.background = color;
      li.append(sw, document.createTextNode(label));
      return li;
    }),
  );
  $('caption').innerHTML =
    state.protocol === 'chord'
      ? '<b>Chord ring</b> · identifiers clockwise from 0 at the top<div class="caption-line" id="caption-line"></div>'
      : '<b>Mainline DHT</b> · Kademlia\'s XOR metric<div class="caption-line" id="caption-line"></div>';
  measure();
  drawBase();
}

function measure() {
  const r = $('view').getBoundingClientRect();
  layout.w = Math.max(320, Math.round(r.width));
  layout.h = Math.max(320, Math.round(r.height));
  if (svg) svg.setAttribute('viewBox', `0 0 ${layout.w} ${layout.h}`);
}

new ResizeObserver(() => {
  if (!svg) return;
  measure();
  drawBase();
  render();
}).observe($('view'));

function render() {
  if (!svg || !state.node) return;
  if (state.protocol === 'chord') renderChord();
  else renderDht();
}

// ---- Chord

function ring() {
  const { w, h } = layout;
  const R = Math.max(90, Math.min(w - 200, h - 150) / 2 - 40);
  return { cx: w / 2, cy: h / 2 + 8, R };
}

function polar(f, r) {
  const { cx, cy } = ring();
  const a = f * 2 * Math.PI;
  return [cx + r * Math.sin(a), cy - r * Math.cos(a)];
}

/** A chord between two points, bowed toward the centre. */
function chordPath(p1, p2, bow = 0.42) {
  const { cx, cy } = ring();
  const mx = (p1[0] + p2[0]) / 2;
  const my = (p1[1] + p2[1]) / 2;
  const c = [mx + (cx - mx) * bow, my + (cy - my) * bow];
  return { p1, p2, c, d: `M${p1[0].toFixed(1)},${p1[1].toFixed(1)} Q${c[0].toFixed(1)},${c[1].toFixed(1)} ${p2[0].toFixed(1)},${p2[1].toFixed(1)}` };
}

function bezier(p1, c, p2, t) {
  const u = 1 - t;
  return [u * u * p1[0] + 2 * u * t * c[0] + t * t * p2[0], u * u * p1[1] + 2 * u * t * c[1] + t * t * p2[1]];
}

/** Moves an end point `by` pixels back along the curve's tangent (so arrows stop at a node). */
function pullBack(p, c, by) {
  const dx = p[0] - c[0];
  const dy = p[1] - c[1];
  const len = Math.hypot(dx, dy) || 1;
  return [p[0] - (dx / len) * by, p[1] - (dy / len) * by];
}

function arcPath(f1, f2, r) {
  const [x1, y1] = polar(f1, r);
  const [x2, y2] = polar(f2, r);
  let span = f2 - f1;
  if (span <= 0) span += 1;
  const large = span > 0.5 ? 1 : 0;
  return `M${x1.toFixed(1)},${y1.toFixed(1)} A${r},${r} 0 ${large} 1 ${x2.toFixed(1)},${y2.toFixed(1)}`;
}

function drawBase() {
  const base = layers.base;
  base.replaceChildren();
  if (state.protocol === 'chord') {
    const { cx, cy, R } = ring();
    el('circle', { cx, cy, r: R * 0.92, class: 'ring-glow' }, base);
    el('circle', { cx, cy, r: R, class: 'ring-track' }, base);
    for (let i = 0; i < 64; i++) {
      const f = i / 64;
      const long = i % 16 === 0;
      const [x1, y1] = polar(f, R + 4);
      const [x2, y2] = polar(f, R + (long ? 14 : 8));
      el('line', { x1, y1, x2, y2, class: 'tick', opacity: long ? 1 : 0.6 }, base);
      if (i === 0) {
        const [tx, ty] = polar(f, R - 20);
        const t = el('text', { x: tx, y: ty + 4, class: 'tick-label mono', 'text-anchor': 'middle' }, base);
        t.textContent = '0';
      }
    }
  } else {
    const { x0, x1, yLine } = dhtGeometry();
    const t = el('text', { x: x0, y: yLine - 112, class: 'section-title' }, base);
    t.textContent = 'Id space · first 32 bits of the 160-bit ids';
    el('line', { x1: x0, y1: yLine, x2: x1, y2: yLine, class: 'space-line' }, base);
    for (let i = 0; i <= 16; i++) {
      const x = x0 + ((x1 - x0) * i) / 16;
      const long = i % 4 === 0;
      el('line', { x1: x, y1: yLine - (long ? 6 : 3), x2: x, y2: yLine + (long ? 6 : 3), class: 'tick' }, base);
      if (long) {
        const l = el('text', { x, y: yLine + 40, class: 'space-label', 'text-anchor': 'middle' }, base);
        l.textContent = i === 16 ? 'ff…' : `${(i * 16).toString(16).padStart(2, '0')}…`;
      }
    }
    const t2 = el('text', { x: x0, y: dhtGeometry().yRows - 18, class: 'section-title' }, base);
    t2.textContent = 'Routing table · bucket i: ids sharing i leading bits with ours';
  }
}

function chordModel() {
  const st = state.node.status();
  const nodes = new Map();
  const add = (n, role) => {
    if (!n || !n.addr) return;
    let e = nodes.get(n.addr);
    if (!e) {
      e = { addr: n.addr, id: n.id || chordIdOf(n.addr), roles: new Set() };
      nodes.set(n.addr, e);
    }
    e.roles.add(role);
  };
  add(st.node, 'self');
  st.successors.forEach((n, i) => add(n, i === 0 ? 'successor' : 'successors'));
  add(st.predecessor, 'predecessor');
  for (const f of st.fingers) add(f, 'finger');
  const t = state.track;
  if (t) {
    for (const a of t.hops) add({ addr: a, id: chordIdOf(a) }, 'asked');
    if (t.owner) add({ addr: t.owner, id: chordIdOf(t.owner) }, 'owner');
  }
  for (const k of state.keys.values()) if (k.owner) add({ addr: k.owner, id: chordIdOf(k.owner) }, 'key owner');
  return { st, nodes: [...nodes.values()].filter((n) => n.id) };
}

const ROLE_ORDER = ['self', 'successor', 'predecessor', 'successors', 'finger', 'owner', 'asked', 'key owner'];
const ROLE_FILL = {
  self: '#fbbf24',
  successor: '#5eead4',
  predecessor: '#7dd3fc',
  successors: '#2dd4bf',
  finger: '#a78bfa',
  owner: '#fb923c',
  asked: '#94a3b8',
  'key owner': '#94a3b8',
};

function renderChord() {
  const { st, nodes } = chordModel();
  const { cx, cy, R } = ring();
  const self = st.node;
  const selfF = frac(self.id);
  const selfP = polar(selfF, R);
  const selfHost = hostOf(self.addr);

  // successor list: arcs along the ring, self -> s0 -> s1 ...
  const arcs = [];
  let prev = self;
  st.successors.forEach((s, i) => {
    if (s.addr !== prev.addr && s.addr !== self.addr) arcs.push({ k: `s:${prev.addr}>${s.addr}`, from: prev, to: s, i, cls: 'arc-succ' });
    prev = s;
  });
  if (st.predecessor && st.predecessor.addr !== self.addr) {
    arcs.push({ k: `p:${st.predecessor.addr}`, from: st.predecessor, to: self, i: 0, cls: 'arc-pred' });
  }
  reconcile(
    layers.arcs,
    arcs,
    (a) => a.k,
    (a) => el('path', { class: a.cls }),
    (e, a) => {
      const r = a.cls === 'arc-pred' ? R - 11 : R;
      setAttrs(e, { d: arcPath(frac(a.from.id), frac(a.to.id), r), opacity: a.cls === 'arc-pred' ? 0.85 : Math.max(0.25, 1 - a.i * 0.16) });
    },
  );

  // fingers: chords from self
  const fingers = [];
  const seenF = new Set();
  for (const f of st.fingers) {
    if (f.addr === self.addr || seenF.has(f.addr)) continue;
    seenF.add(f.addr);
    fingers.push(f);
  }
  reconcile(
    layers.fingers,
    fingers,
    (f) => `f:${f.addr}`,
    () => el('path', { class: 'chord-finger' }),
    (e, f) => setAttrs(e, { d: chordPath(selfP, polar(frac(f.id), R), 0.5).d }),
  );

  // keys: diamonds just inside the ring, a dotted tie to the owner
  const keys = [...state.keys.entries()].map(([id, k]) => ({ id, ...k })).sort((a, b) => frac(a.id) - frac(b.id));
  // a label that would sit on its neighbour's moves inward
  keys.forEach((k, i) => {
    const prev = keys[i - 1];
    k.depth = 0;
    if (prev) {
      const [ax, ay] = polar(frac(prev.id), R - 30);
      const [bx, by] = polar(frac(k.id), R - 30);
      if (Math.hypot(ax - bx, ay - by) < 26) k.depth = (prev.depth + 1) % 3;
    }
  });
  reconcile(
    layers.keys,
    keys,
    (k) => `k:${k.id}`,
    () => {
      const g = el('g', { class: 'key' });
      el('line', { class: 'key-owner' }, g);
      el('rect', { class: 'key-mark', x: -5, y: -5, width: 10, height: 10, transform: 'rotate(45)' }, g);
      el('text', { class: 'key-label' }, g);
      return g;
    },
    (g, k) => {
      const f = frac(k.id);
      const [x, y] = polar(f, R - 30);
      setAttrs(g, { transform: `translate(${x.toFixed(1)} ${y.toFixed(1)})` });
      const [ox, oy] = k.owner && chordIdOf(k.owner) ? polar(frac(chordIdOf(k.owner)), R - 12) : [x, y];
      setAttrs(g.children[0], { x1: 0, y1: 0, x2: (ox - x).toFixed(1), y2: (oy - y).toFixed(1), opacity: k.owner ? 0.55 : 0 });
      const a = f * 2 * Math.PI;
      const inward = 14 + k.depth * 16;
      const lx = -Math.sin(a) * inward;
      const ly = Math.cos(a) * inward + 4 + (Math.abs(Math.sin(a)) > 0.3 ? k.depth * 6 : 0);
      const label = g.children[2];
      setAttrs(label, { x: lx.toFixed(1), y: ly.toFixed(1), 'text-anchor': Math.sin(a) > 0.3 ? 'end' : Math.sin(a) < -0.3 ? 'start' : 'middle' });
      const s = k.text.length > 14 ? `${k.text.slice(0, 13)}…` : k.text;
      if (label.textContent !== s) label.textContent = s;
      title(g, `key ${q(k.text)} · id ${k.id}${k.owner ? ` · owner ${k.owner}` : ''}`);
    },
  );

  // the last lookup's path: self -> first asked -> next asked ...
  const t = state.track;
  const hops = [];
  if (t) {
    let from = self.addr;
    t.hops.forEach((to, i) => {
      if (to !== from) hops.push({ k: `h:${t.query}:${i}`, from, to, n: i + 1 });
      from = to;
    });
  }
  reconcile(
    layers.path,
    hops,
    (h) => h.k,
    () => {
      const g = el('g', { class: 'hop-g' });
      el('path', { class: 'hop' }, g);
      el('circle', { class: 'hop-badge', r: 9 }, g);
      el('text', { class: 'hop-label', 'text-anchor': 'middle' }, g);
      return g;
    },
    (g, h) => {
      const a = chordIdOf(h.from);
      const b = chordIdOf(h.to);
      if (!a || !b) return;
      const p1 = polar(frac(a), R);
      const p2 = polar(frac(b), R);
      const c = chordPath(p1, p2, 0.3);
      const end = pullBack(p2, c.c, 13);
      const start = pullBack(p1, c.c, 11);
      setAttrs(g.children[0], { d: `M${start[0].toFixed(1)},${start[1].toFixed(1)} Q${c.c[0].toFixed(1)},${c.c[1].toFixed(1)} ${end[0].toFixed(1)},${end[1].toFixed(1)}` });
      const m = bezier(p1, c.c, p2, 0.5);
      setAttrs(g.children[1], { cx: m[0].toFixed(1), cy: m[1].toFixed(1) });
      setAttrs(g.children[2], { x: m[0].toFixed(1), y: (m[1] + 3.8).toFixed(1) });
      g.children[2].textContent = String(h.n);
      title(g, `hop ${h.n}: find_successor to ${h.to}`);
    },
  );

  // nodes: a label that would sit on its neighbour's moves outward
  const byAngle = [...nodes].sort((a, b) => frac(a.id) - frac(b.id));
  byAngle.forEach((n, i) => {
    const prev = byAngle[i - 1];
    n.lift = 0;
    if (prev) {
      const [ax, ay] = polar(frac(prev.id), R);
      const [bx, by] = polar(frac(n.id), R);
      if (Math.hypot(ax - bx, ay - by) < 30 && prev.lift === 0) n.lift = 1;
    }
  });
  reconcile(
    layers.nodes,
    nodes,
    (n) => `n:${n.addr}`,
    (n) => {
      const g = el('g', { class: 'node' });
      if (n.roles.has('self')) el('circle', { class: 'halo', r: 20 }, g);
      el('circle', { class: 'ownermark', r: 15, fill: 'none', stroke: '#fb923c', 'stroke-width': 2, opacity: 0 }, g);
      el('circle', { class: 'body' }, g);
      const label = el('text', { class: 'node-label' }, g);
      el('tspan', { class: 'port' }, label);
      el('tspan', { class: 'idp', dx: 6, opacity: 0.6 }, label);
      return g;
    },
    (g, n) => {
      const isSelf = n.roles.has('self');
      const primary = ROLE_ORDER.find((r) => n.roles.has(r)) || 'asked';
      g.classList.toggle('self', isSelf);
      for (const r of ['successor', 'predecessor', 'finger']) g.classList.toggle(r, n.roles.has(r));
      const f = frac(n.id);
      const [x, y] = polar(f, R);
      setAttrs(g, { transform: `translate(${x.toFixed(1)} ${y.toFixed(1)})` });
      const known = n.roles.has('self') || n.roles.has('successor') || n.roles.has('successors') || n.roles.has('predecessor') || n.roles.has('finger');
      const body = g.querySelector('.body');
      setAttrs(body, {
        r: isSelf ? 11 : primary === 'successor' ? 8.5 : 7,
        fill: known ? ROLE_FILL[primary] : '#0a0f1a',
        stroke: known ? '#0a0f1a' : ROLE_FILL[primary],
        'stroke-width': known ? 2.5 : 2,
      });
      const isOwner = t && t.owner === n.addr;
      setAttrs(g.querySelector('.ownermark'), { opacity: isOwner ? 0.9 : 0 });
      const a = f * 2 * Math.PI;
      const lr = (isSelf ? 26 : 20) + n.lift * 17;
      const label = g.querySelector('.node-label');
      setAttrs(label, {
        x: (Math.sin(a) * lr).toFixed(1),
        y: (-Math.cos(a) * lr + 4).toFixed(1),
        'text-anchor': Math.sin(a) > 0.25 ? 'start' : Math.sin(a) < -0.25 ? 'end' : 'middle',
      });
      const port = hostOf(n.addr) === selfHost ? `:${portOf(n.addr)}` : n.addr;
      const [tp, ti] = label.children;
      if (tp.textContent !== port) tp.textContent = port;
      const idp = n.id.slice(0, 4);
      if (ti.textContent !== idp) ti.textContent = idp;
      const roles = [...n.roles].map((r) => (r === 'self' ? 'this tab' : r)).join(', ');
      title(g, `${n.addr}\nid ${n.id}\n${roles}`);
    },
  );

  // the centre
  const c = layers.center;
  if (!c.firstChild) {
    el('text', { class: 'center-phase', 'text-anchor': 'middle' }, c);
    el('text', { class: 'center-sub', 'text-anchor': 'middle' }, c);
    el('text', { class: 'center-id', 'text-anchor': 'middle' }, c);
  }
  const [ph, sub, idt] = c.children;
  setAttrs(ph, { x: cx, y: cy - 8 });
  setAttrs(sub, { x: cx, y: cy + 16 });
  setAttrs(idt, { x: cx, y: cy + 36 });
  ph.textContent = st.phase;
  const others = nodes.filter((n) => !n.roles.has('self')).length;
  sub.textContent = `${others} peer${others === 1 ? '' : 's'} known · ${Number(st.keys)} key${Number(st.keys) === 1 ? '' : 's'} held`;
  idt.textContent = `id ${self.id.slice(0, 16)}…`;
  const line = $('caption-line');
  if (line) {
    let s = '';
    if (t) {
      const tail = t.done ? (t.owner ? ` → owner ${t.owner}` : '') : ' …';
      s = `last ${t.kind} ${q(t.keyText)}: ${t.hops.length} node${t.hops.length === 1 ? '' : 's'} asked${tail}`;
    }
    if (line.textContent !== s) line.textContent = s;
  }
}

// ---- DHT

/** The DHT drawing's frame: the id strip above the bucket rows, centred as a block. */
function dhtGeometry() {
  const { w, h } = layout;
  const x0 = 64;
  const x1 = w - 64;
  const rows = Math.max(1, state.dhtRows || 1);
  const rh = Math.max(30, Math.min(84, (h - 84 - 380) / rows));
  const content = 300 + rows * rh;
  const top = Math.max(0, (h - 70 - content) / 2);
  const yLine = top + 140;
  const yRows = top + 280;
  return { w, h, x0, x1, yLine, yRows, rh };
}

function dhtX(id) {
  const { x0, x1 } = dhtGeometry();
  return x0 + frac(id) * (x1 - x0);
}

function renderDht() {
  const node = state.node;
  const st = node.status();
  const buckets = node.buckets();
  const selfId = st.node.id;
  state.ids.set(st.node.addr, selfId);
  const byIndex = new Map(buckets.map((b) => [Number(b.index), b.nodes]));
  const maxIdx = Math.max(-1, ...byIndex.keys());
  // Buckets split from the deepest one as it overflows, so 0..last all exist; the last
  // also holds the ids that share more bits.
  let rows = [];
  for (let i = 0; i <= Math.max(0, maxIdx); i++) rows.push(i);
  if (rows.length > 10) rows = rows.filter((i) => byIndex.has(i) || i === maxIdx);
  if (rows.length !== state.dhtRows) {
    // the block's height changed: re-centre it
    state.dhtRows = rows.length;
    drawBase();
  }
  const { x0, x1, yLine, yRows } = dhtGeometry();
  const t = state.track;
  const queried = new Set(t ? t.hops : []);
  const selfHost = hostOf(st.node.addr);

  // the id strip: self, every table node, and the lookup's nodes
  const strip = new Map();
  for (const b of buckets) {
    for (const n of b.nodes) {
      strip.set(n.addr, { addr: n.addr, id: n.id, table: true });
      state.ids.set(n.addr, n.id);
    }
  }
  for (const a of queried) if (!strip.has(a) && state.ids.get(a)) strip.set(a, { addr: a, id: state.ids.get(a), table: false });
  strip.set(st.node.addr, { addr: st.node.addr, id: selfId, self: true });
  // labels under their dots; one that would sit on its neighbour's goes above
  const byX = [...strip.values()].sort((a, b) => frac(a.id) - frac(b.id));
  byX.forEach((n, i) => {
    const prev = byX[i - 1];
    n.up = Boolean(prev && !prev.up && dhtX(n.id) - dhtX(prev.id) < 56);
  });
  reconcile(
    layers.nodes,
    [...strip.values()],
    (n) => `d:${n.addr}`,
    (n) => {
      const g = el('g', { class: n.self ? 'node self' : 'dot' });
      if (n.self) el('circle', { class: 'halo', r: 17 }, g);
      el('circle', { class: 'qring', r: 11, fill: 'none', stroke: '#fb923c', 'stroke-width': 2, opacity: 0 }, g);
      el('circle', { class: 'body' }, g);
      el('text', { class: 'node-label', y: 22, 'text-anchor': 'middle' }, g);
      return g;
    },
    (g, n) => {
      setAttrs(g, { transform: `translate(${dhtX(n.id).toFixed(1)} ${yLine})` });
      const port = n.self ? 'this tab' : hostOf(n.addr) === selfHost ? `:${portOf(n.addr)}` : n.addr;
      const label = g.children[g.children.length - 1];
      setAttrs(label, { y: n.up ? -16 : 22 });
      if (label.textContent !== port) label.textContent = port;
      setAttrs(g.querySelector('.body'), {
        r: n.self ? 9 : 6,
        fill: n.self ? '#fbbf24' : n.table ? '#5eead4' : '#0a0f1a',
        stroke: n.self || n.table ? '#0a0f1a' : '#94a3b8',
        'stroke-width': 2,
      });
      setAttrs(g.querySelector('.qring'), { opacity: queried.has(n.addr) ? 0.95 : 0 });
      title(g, `${n.addr}\nid ${n.id}${n.self ? '\nthis tab' : n.table ? '\nin the routing table' : ''}${queried.has(n.addr) ? '\nqueried by the last lookup' : ''}`);
    },
  );

  // the lookup: target marker and query arcs from self
  const queries = [];
  if (t) {
    const tx = dhtX(t.match);
    queries.push({ k: `t:${t.query}`, target: true, x: tx });
    t.hops.forEach((a, i) => {
      const id = state.ids.get(a);
      if (id) queries.push({ k: `q:${t.query}:${a}`, x: dhtX(id), n: i + 1, addr: a });
    });
  }
  const sx = dhtX(selfId);
  reconcile(
    layers.queries,
    queries,
    (x) => x.k,
    (x) => {
      const g = el('g', {});
      if (x.target) {
        el('line', { class: 'target-line' }, g);
        el('path', { class: 'target-mark', d: 'M-7,-9 L7,-9 L0,0 z' }, g);
        el('text', { class: 'hop-label', 'text-anchor': 'middle' }, g);
      } else {
        el('path', { class: 'query-arc' }, g);
      }
      return g;
    },
    (g, x) => {
      if (x.target) {
        setAttrs(g.children[0], { x1: x.x, y1: yLine - 90, x2: x.x, y2: yLine + 46 });
        setAttrs(g.children[1], { transform: `translate(${x.x.toFixed(1)} ${yLine + 56}) rotate(180)` });
        setAttrs(g.children[2], { x: x.x.toFixed(1), y: yLine + 78 });
        const label = `${t.kind === 'lookup' ? 'find_node' : t.kind} ${t.match.slice(0, 8)}…`;
        if (g.children[2].textContent !== label) g.children[2].textContent = label;
        title(g, `target ${t.match}`);
      } else {
        const span = Math.abs(x.x - sx);
        const hgt = Math.min(70, 14 + span * 0.18) + x.n * 3;
        const midx = (sx + x.x) / 2;
        const end = [x.x + (x.x > sx ? -3 : 3), yLine - 10];
        setAttrs(g.children[0], { d: `M${sx.toFixed(1)},${yLine - 10} Q${midx.toFixed(1)},${(yLine - 10 - hgt * 2).toFixed(1)} ${end[0].toFixed(1)},${end[1]}` });
        title(g, `query ${x.n}: ${x.addr}`);
      }
    },
  );

  // the routing table: one row per bucket, slots of k
  const { rh } = dhtGeometry();
  const slots = Math.max(8, ...[...byIndex.values()].map((n) => n.length));
  const barX = x0 + 178;
  const barW = x1 - barX;
  const slotW = barW / slots;
  reconcile(
    layers.rows,
    rows.map((i, r) => ({ i, r, nodes: byIndex.get(i) || [] })),
    (row) => `b:${row.i}`,
    () => {
      const g = el('g', { class: 'bucket' });
      el('rect', { class: 'bucket-bg', rx: 8 }, g);
      el('rect', { class: 'bucket-fill', rx: 8 }, g);
      el('g', { class: 'slots' }, g);
      el('text', { class: 'bucket-label' }, g);
      el('text', { class: 'bucket-sub' }, g);
      el('g', { class: 'members' }, g);
      return g;
    },
    (g, row) => {
      const y = yRows + row.r * rh;
      const bh = rh - 8;
      g.classList.toggle('empty', row.nodes.length === 0);
      g.dataset.index = row.i;
      setAttrs(g.children[0], { x: barX, y, width: barW, height: bh });
      setAttrs(g.children[1], { x: barX, y, width: Math.max(0, (row.nodes.length / slots) * barW), height: bh });
      const slotG = g.children[2];
      if (slotG.childElementCount !== slots) {
        slotG.replaceChildren();
        for (let s = 1; s < slots; s++) el('line', { class: 'bucket-slot' }, slotG);
      }
      [...slotG.children].forEach((ln, s) => setAttrs(ln, { x1: barX + (s + 1) * slotW, x2: barX + (s + 1) * slotW, y1: y + 5, y2: y + bh - 5 }));
      setAttrs(g.children[3], { x: x0, y: y + bh / 2 - 2 });
      g.children[3].textContent = `bucket ${row.i}`;
      setAttrs(g.children[4], { x: x0, y: y + bh / 2 + 13 });
      const last = row.i === maxIdx || maxIdx < 0;
      const share = last ? (row.i === 0 ? 'all' : `1/${2 ** row.i}`) : row.i === 0 ? '½' : `1/${2 ** (row.i + 1)}`;
      g.children[4].textContent = `${row.nodes.length}/${slots} · ${last && row.i > 0 ? '≥' : ''}${row.i} bit${row.i === 1 ? '' : 's'} · ${share} of ids`;
      title(g, last ? `bucket ${row.i}: the nodes whose ids share at least ${row.i} leading bits with ours; it splits when it overflows` : `bucket ${row.i}: the nodes whose ids share exactly ${row.i} leading bits with ours`);
      reconcile(
        g.children[5],
        row.nodes.map((n, s) => ({ ...n, s })),
        (n) => `m:${n.addr}`,
        () => {
          const m = el('g', { class: 'node' });
          el('circle', { class: 'qring', r: 11, fill: 'none', stroke: '#fb923c', 'stroke-width': 2, opacity: 0 }, m);
          el('circle', { class: 'body', r: 7, fill: '#5eead4', stroke: '#0a0f1a', 'stroke-width': 2 }, m);
          el('text', { class: 'node-label port', x: 15, y: 4 }, m);
          el('text', { class: 'node-label idp', x: 15, y: 18, opacity: 0.6 }, m);
          return m;
        },
        (m, n) => {
          // tall rows: a dot over its port and id, centred in the slot; short: dot, port
          const tall = bh >= 60;
          const mx = tall ? barX + (n.s + 0.5) * slotW : barX + n.s * slotW + 16;
          const my = tall ? y + bh / 2 - 13 : y + bh / 2;
          setAttrs(m, { transform: `translate(${mx.toFixed(1)} ${my.toFixed(1)})` });
          setAttrs(m.children[0], { opacity: queried.has(n.addr) ? 0.95 : 0 });
          const [p, i] = [m.children[2], m.children[3]];
          const port = hostOf(n.addr) === selfHost ? `:${portOf(n.addr)}` : n.addr;
          setAttrs(p, tall ? { x: 0, y: 27, 'text-anchor': 'middle' } : { x: 15, y: 4, 'text-anchor': 'start' });
          if (p.textContent !== port) p.textContent = port;
          const idp = tall ? `${n.id.slice(0, Math.max(4, Math.min(10, Math.floor(slotW / 8) - 2)))}…` : '';
          setAttrs(i, { x: 0, y: 41, 'text-anchor': 'middle' });
          if (i.textContent !== idp) i.textContent = idp;
          title(m, `${n.addr}\nid ${n.id}\nbucket ${row.i}${queried.has(n.addr) ? '\nqueried by the last lookup' : ''}`);
        },
      );
    },
  );

  // a caption line under the strip
  const c = layers.center;
  if (!c.firstChild) {
    el('text', { class: 'center-sub', 'text-anchor': 'end' }, c);
    el('text', { class: 'center-sub lookup-line', 'text-anchor': 'end', fill: '#fb923c' }, c);
  }
  const [sub, lk] = c.children;
  setAttrs(sub, { x: x1, y: yLine - 112 });
  sub.textContent = `${Number(st.tableNodes)} nodes in the table · ${Number(st.storedItems)} items, ${Number(st.storedPeers)} peers stored`;
  setAttrs(lk, { x: x1, y: yRows - 18 });
  if (t) {
    const what = t.kind === 'lookup' ? 'find_node' : t.kind;
    lk.textContent = `last ${what}: ${t.hops.length} node${t.hops.length === 1 ? '' : 's'} queried${t.done ? '' : ' …'}`;
  } else lk.textContent = '';
}

// ---- packets in flight

function positionOf(addr) {
  if (!svg) return null;
  const id = idOf(addr);
  if (!id) return null;
  if (state.protocol === 'chord') {
    const { R } = ring();
    return polar(frac(id), R);
  }
  const { yLine } = dhtGeometry();
  return [dhtX(id), yLine];
}

let animating = false;

function launchPacket(peer, d, outbound) {
  if (!svg || !state.node || document.hidden) return;
  if (state.packets.length > 48) return;
  const selfId = state.selfId;
  const far = positionOf(peer);
  if (!far) return;
  let selfP;
  let c;
  if (state.protocol === 'chord') {
    const { R } = ring();
    selfP = polar(frac(selfId), R);
    const [a, b] = outbound ? [selfP, far] : [far, selfP];
    c = chordPath(a, b, 0.5).c;
  } else {
    const { yLine } = dhtGeometry();
    selfP = [dhtX(selfId), yLine];
    const [a, b] = outbound ? [selfP, far] : [far, selfP];
    const span = Math.abs(b[0] - a[0]);
    const bend = Math.min(70, 14 + span * 0.18) * 2;
    c = [(a[0] + b[0]) / 2, yLine + (outbound ? -bend : bend)];
  }
  const [from, to] = outbound ? [selfP, far] : [far, selfP];
  const color = packetColor(d);
  const g = el('g', { class: 'packet-g' }, layers.packets);
  el('circle', { class: 'packet', r: outbound ? 4.5 : 3.2, fill: color, opacity: outbound ? 1 : 0.7 }, g);
  const t = state.track;
  const important = d && d.key && ((t && !t.done && d.key === t.match) || (state.protocol === 'chord' && state.keys.has(d.key)));
  if (important) {
    const label = el('text', { class: 'packet-label', fill: color, x: 8, y: -8 }, g);
    label.textContent = d.message;
  }
  const dist = Math.hypot(to[0] - from[0], to[1] - from[1]);
  state.packets.push({ g, from, to, c, t0: performance.now(), dur: 450 + dist * 1.1 });
  if (!animating) {
    animating = true;
    requestAnimationFrame(animate);
  }
}

function animate(ts) {
  const now = Math.max(ts, performance.now() - 1);
  state.packets = state.packets.filter((p) => {
    const k = Math.min(1, (now - p.t0) / p.dur);
    if (k >= 1 || !p.g.isConnected) {
      p.g.remove();
      return false;
    }
    const e = k < 0.5 ? 2 * k * k : 1 - (-2 * k + 2) ** 2 / 2;
    const [x, y] = bezier(p.from, p.c, p.to, e);
    p.g.setAttribute('transform', `translate(${x.toFixed(1)} ${y.toFixed(1)})`);
    p.g.setAttribute('opacity', k > 0.85 ? ((1 - k) / 0.15).toFixed(2) : '1');
    return true;
  });
  if (state.packets.length) requestAnimationFrame(animate);
  else animating = false;
}

// ---------------------------------------------------------------- wiring

function main() {
  const params = new URLSearchParams(location.search);
  $('bridge-url').value = params.get('ws') || DEFAULT_WS;
  $('connect').addEventListener('click', () => {
    connect().catch((e) => {
      console.error('overlay: connect failed', errorText(e));
    });
  });
  for (const kind of ['put', 'get', 'lookup']) $(kind).addEventListener('click', () => command(kind));
  $('value').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !$('put').disabled) command('put');
  });
  $('key').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !$('get').disabled) command('get');
  });
  $('bridge-url').addEventListener('keydown', (e) => {
    if (e.key === 'Enter') $('connect').click();
  });
  // A Chord member that goes away hands its keys to its successor (a graceful leave),
  // as far as the frames get out before the tab closes.
  window.addEventListener('pagehide', () => {
    if (state.protocol !== 'chord' || !state.node || state.node.status().phase !== 'member') return;
    try {
      state.node.leave(nowUs());
      pump();
    } catch (e) {
      console.warn('overlay: leaving failed', errorText(e));
    }
  });
  ready.then(
    () => {
      if (params.get('auto') === '1') $('connect').click();
    },
    (e) => {
      console.error('overlay: cannot load the WASM module', errorText(e));
      setConn('error', 'WASM failed to load');
    },
  );
}

main();
