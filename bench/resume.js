#!/usr/bin/env node
// bench/resume.js -- N typed clients resume at once after a gap.
//
// N clients (user names r0..rN-1) join one room, spread over the targets,
// and see a marker message live; they all disconnect; a publisher says G
// messages meanwhile (its acks give their ids); then all N reconnect at
// once with `?after=` the marker's id, each on the instance it was on.
// A client is live again when its `history` event arrives; before it, it
// must have received exactly the G messages of the gap, in stream order.
// Last, one more message proves every client gets live messages, once.
//
//   node bench/resume.js --target 127.0.0.1:8080 [--target ...]
//        [--clients 1000] [--gap 100] [--room bench-resume] [--hold]
//
// --hold: print "ready" before the reconnect and wait for SIGUSR2 (so a
// driver can sample CPU around the resume alone), and "resumed" once all
// are live. Prints one line of key=value results; exits 1 when a client
// lost, duplicated or reordered anything, or anything timed out.
// Needs the `ws` module (NODE_PATH; wscat has it).
'use strict';
const WebSocket = require('ws');

const opt = { targets: [], clients: 1000, gap: 100, room: 'bench-resume', hold: false,
              timeout: 120 };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i], v = process.argv[i + 1];
  if (a === '--target') { opt.targets.push(v); i++; }
  else if (a === '--clients') { opt.clients = +v; i++; }
  else if (a === '--gap') { opt.gap = +v; i++; }
  else if (a === '--room') { opt.room = v; i++; }
  else if (a === '--timeout') { opt.timeout = +v; i++; }
  else if (a === '--hold') opt.hold = true;
  else { console.error(`resume.js: unknown argument ${a}`); process.exit(2); }
}
if (opt.targets.length === 0 || !(opt.clients > 0) || !(opt.gap >= 0)) {
  console.error('usage: resume.js --target HOST:PORT [--target ...] [--clients N] [--gap G]');
  process.exit(2);
}

const PROTO = 'redis-chat.v1';
const now = () => Number(process.hrtime.bigint()) / 1e6; // ms
let phase = 'connect';
const fail = (why) => { console.error(`resume.js: ${why} (while: ${phase})`); process.exit(1); };
setTimeout(() => fail(`timed out after ${opt.timeout} s`), opt.timeout * 1000).unref();

function url(i, user, query) {
  return `ws://${opt.targets[i % opt.targets.length]}/chat/${opt.room}/${user}${query}`;
}

// Open a typed connection; resolves on its welcome. onEvent sees every
// event after it.
function open(u, onEvent) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(u, PROTO, { perMessageDeflate: false });
    let welcomed = false;
    ws.on('message', (d) => {
      const ev = JSON.parse(d);
      if (!welcomed) {
        if (ev.type !== 'welcome') return reject(new Error(`${u}: ${d}`));
        welcomed = true;
        return resolve(ws);
      }
      onEvent(ev);
    });
    ws.on('unexpected-response', (q, res) => reject(new Error(`${u}: HTTP ${res.statusCode}`)));
    ws.on('error', (e) => { if (!welcomed) reject(e); });
  });
}

function closeAll(list) {
  return Promise.all(list.map((ws) => new Promise((res) => {
    if (ws.readyState === WebSocket.CLOSED) return res();
    ws.on('close', res);
    ws.close();
  })));
}

// The publisher: says text, resolves with the message's id (its ack); asks
// who is in the room.
let pub, acks = new Map(), onPresence = null;
function say(text, id) {
  return new Promise((resolve, reject) => {
    acks.set(id, { resolve, reject });
    pub.send(JSON.stringify({ type: 'send', text, id }));
  });
}
function pubEvent(ev) {
  if (ev.type === 'ack' && acks.has(ev.id)) {
    acks.get(ev.id).resolve(ev.msg_id);
    acks.delete(ev.id);
  } else if (ev.type === 'error' && acks.has(ev.id)) {
    acks.get(ev.id).reject(new Error(`send refused: ${ev.reason}`));
  } else if (ev.type === 'presence' && onPresence) {
    onPresence(ev.count);
  }
}
// Resolves once the room holds `n` users (with announce off no leave is
// told: ask).
function roomHolds(n) {
  return new Promise((resolve) => {
    const ask = () => pub.send(JSON.stringify({ type: 'who' }));
    onPresence = (count) => {
      if (count === n) { onPresence = null; resolve(); } else setTimeout(ask, 50);
    };
    ask();
  });
}

function pct(sorted, p) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] : 0;
}

async function main() {
  const n = opt.clients;
  pub = await open(url(0, 'resume-pub', '?history=0'), pubEvent);

  // 1. everyone joins and sees the marker live
  let marker = null, sawMarker = 0, markerWaiter = null;
  const first = [];
  for (let i = 0; i < n; i += 200) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + 200); j++) {
      batch.push(open(url(j, `r${j}`, '?history=0'), (ev) => {
        if (ev.type === 'message' && ev.text === 'marker') {
          sawMarker++;
          if (sawMarker === n && markerWaiter) markerWaiter();
        }
      }));
    }
    first.push(...await Promise.all(batch));
  }
  phase = 'the marker reaches everyone';
  const markerSeen = new Promise((res) => { markerWaiter = res; });
  marker = await say('marker', 'marker');
  await markerSeen;

  // 2. all leave; the gap is said while they are away
  phase = 'all leave';
  await closeAll(first);
  await roomHolds(1);
  phase = 'the gap is said';
  const gapIds = [];
  for (let g = 0; g < opt.gap; g++) gapIds.push(await say(`gap ${g}`, `g${g}`));

  if (opt.hold) {
    process.stdout.write('ready\n');
    await new Promise((res) => process.once('SIGUSR2', res));
  }

  // 3. all reconnect at once with the marker's id
  phase = 'the resume';
  const t0 = now(), cpu0 = process.cpuUsage();
  const st = [];
  let live = 0, liveWaiter = null, bad = [];
  const allLive = new Promise((res) => { liveWaiter = res; });
  const second = [];
  for (let i = 0; i < n; i++) {
    const s = { got: [], live: -1, welcome: -1, after: 0, history: null };
    st.push(s);
    second.push(open(url(i, `r${i}`, `?after=${marker}`), (ev) => {
      if (ev.type === 'message' && s.live < 0) {
        s.got.push(ev.msg_id);
      } else if (ev.type === 'message' && ev.text === 'after') {
        s.after++;
      } else if (ev.type === 'history' && s.live < 0) {
        s.live = now() - t0;
        s.history = ev;
        if (++live === n) liveWaiter();
      }
    }).then((ws) => { s.welcome = now() - t0; return ws; }));
  }
  const conns = await Promise.all(second);
  await allLive;
  const tAll = now() - t0, cpu = process.cpuUsage(cpu0);
  if (opt.hold) process.stdout.write('resumed\n');

  // 4. a live message reaches each once
  phase = 'the live message after';
  await say('after', 'after');
  await new Promise((res) => setTimeout(res, 1000));
  await closeAll(conns);
  pub.close();

  let lost = 0, dup = 0, ooo = 0, truncated = 0, afterBad = 0;
  for (const s of st) {
    const seen = new Set();
    let k = 0;
    for (const id of s.got) {
      if (seen.has(id)) { dup++; continue; }
      seen.add(id);
      if (id !== gapIds[k]) ooo++;
      k++;
    }
    lost += gapIds.filter((id) => !seen.has(id)).length;
    if (s.history.truncated) truncated++;
    if (s.history.count !== opt.gap) bad.push(`history count ${s.history.count}`);
    if (s.after !== 1) afterBad++;
  }
  const lives = st.map((s) => s.live).sort((a, b) => a - b);
  const welcomes = st.map((s) => s.welcome).sort((a, b) => a - b);
  const f = (x) => x.toFixed(1);
  console.log(`clients=${n} gap=${opt.gap} replayed=${st.reduce((a, s) => a + s.got.length, 0)}` +
              ` all_live_ms=${f(tAll)} live_p50_ms=${f(pct(lives, 0.5))}` +
              ` live_p99_ms=${f(pct(lives, 0.99))} welcome_p50_ms=${f(pct(welcomes, 0.5))}` +
              ` welcome_max_ms=${f(welcomes[n - 1])} lost=${lost} dup=${dup} ooo=${ooo}` +
              ` truncated=${truncated} after_not_once=${afterBad}` +
              ` client_cpu_s=${((cpu.user + cpu.system) / 1e6).toFixed(2)}`);
  if (lost || dup || ooo || truncated || afterBad || bad.length)
    fail(`lost ${lost}, duplicated ${dup}, out of order ${ooo}, truncated ${truncated}, ` +
         `live message not once ${afterBad}${bad.length ? ', ' + bad[0] : ''}`);
  process.exit(0);
}

main().catch((e) => fail(e.message));
