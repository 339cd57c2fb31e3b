#!/usr/bin/env node
// bench/acks.js -- acknowledged typed sends: how many per second, how long
// each waits for its ack.
//
// S senders, each alone in its own room with one listener, each keeping up
// to W sends awaiting their answer (an ack or an error: every send gets
// exactly one), for T seconds; then no new sends, and the ones in flight are
// waited for. Latency is send -> answer, per send. The listeners count the
// messages they receive: each acknowledged send must reach its room's
// listener once (a lost or duplicated message fails the run).
//
//   node bench/acks.js --target 127.0.0.1:8080 [--senders 20] [--window 16]
//        [--secs 10] [--room acks] [--size 32] [--hold]
//
// --hold: print "ready" once everyone is connected and wait for SIGUSR2
// before sending (so a driver can sample CPU and Redis counters right
// before), and print "done" once every send has its answer (before the
// listeners' final count). Prints one line of key=value results; exits 1
// on a lost, duplicated or unanswered send, a refusal other than
// "not replicated", or a timeout. Needs the `ws` module (NODE_PATH; wscat
// has it), as bench/resume.js.
'use strict';
const WebSocket = require('ws');

const opt = { target: '', senders: 20, window: 16, secs: 10, room: 'acks', size: 32,
              hold: false };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i], v = process.argv[i + 1];
  if (a === '--target') { opt.target = v; i++; }
  else if (a === '--senders') { opt.senders = +v; i++; }
  else if (a === '--window') { opt.window = +v; i++; }
  else if (a === '--secs') { opt.secs = +v; i++; }
  else if (a === '--room') { opt.room = v; i++; }
  else if (a === '--size') { opt.size = +v; i++; }
  else if (a === '--hold') opt.hold = true;
  else { console.error(`acks.js: unknown argument ${a}`); process.exit(2); }
}
// the server refuses a 65th send awaiting its answer
if (!opt.target || !(opt.senders > 0) || !(opt.window >= 1 && opt.window <= 64) ||
    !(opt.secs > 0) || !(opt.size >= 1)) {
  console.error('usage: acks.js --target HOST:PORT [--senders S] [--window 1..64] [--secs T]');
  process.exit(2);
}

const PROTO = 'redis-chat.v1';
const now = () => Number(process.hrtime.bigint()) / 1e6; // ms
let phase = 'connect';
const fail = (why) => { console.error(`acks.js: ${why} (while: ${phase})`); process.exit(1); };
// the window, plus time to connect and to drain (WAIT's timeout is 1 s by default)
setTimeout(() => fail('timed out'), (opt.secs + 60) * 1000).unref();

function open(room, user, onEvent) {
  return new Promise((resolve, reject) => {
    const u = `ws://${opt.target}/chat/${room}/${user}?history=0`;
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
    ws.on('error', (e) => { if (!welcomed) reject(e); else fail(`${u}: ${e.message}`); });
    ws.on('close', () => { if (welcomed && phase !== 'close') fail(`${u}: closed by the server`); });
  });
}

// every send's time, by id (ids are global: 0, 1, 2, ...); -1 once answered
const sentAt = [];
const latency = [];
let sends = 0, acks = 0, notReplicated = 0, otherErrors = 0, firstOther = '';
let sending = false, inFlight = 0, lastAnswer = 0, drained = null;
const text = 'x'.repeat(opt.size);

function answer(ev) {
  const id = ev.id;
  if (typeof id !== 'number' || !(sentAt[id] >= 0))
    fail(`an answer for no send awaiting one: ${JSON.stringify(ev)}`);
  const t = now();
  latency.push(t - sentAt[id]);
  sentAt[id] = -1;
  lastAnswer = t;
  inFlight--;
  if (ev.type === 'ack') acks++;
  else if (/^not replicated/.test(ev.reason)) notReplicated++;
  else { otherErrors++; if (!firstOther) firstOther = ev.reason; }
}

function sendOne(s) {
  const id = sends++;
  sentAt[id] = now();
  s.out++;
  inFlight++;
  s.ws.send(JSON.stringify({ type: 'send', text, id }));
}

function pct(sorted, p) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] : 0;
}

async function main() {
  const senders = [], listeners = [];
  for (let i = 0; i < opt.senders; i++) {
    const room = `${opt.room}-${i}`;
    const l = { got: 0 };
    l.ws = await open(room, `l${i}`, (ev) => { if (ev.type === 'message') l.got++; });
    listeners.push(l);
    const s = { out: 0 };
    s.ws = await open(room, `s${i}`, (ev) => {
      if ((ev.type === 'ack' && ev.request === 'send') ||
          (ev.type === 'error' && ev.request === 'send')) {
        answer(ev);
        s.out--;
        if (sending) sendOne(s);
        else if (inFlight === 0 && drained) drained();
      } else if (ev.type === 'error') {
        fail(`error: ${JSON.stringify(ev)}`);
      }
    });
    senders.push(s);
  }

  if (opt.hold) {
    process.stdout.write('ready\n');
    await new Promise((res) => process.once('SIGUSR2', res));
  }
  phase = 'sending';
  const t0 = now(), cpu0 = process.cpuUsage();
  sending = true;
  for (const s of senders) for (let k = 0; k < opt.window; k++) sendOne(s);
  await new Promise((res) => setTimeout(res, opt.secs * 1000));
  sending = false;
  phase = 'the last answers';
  if (inFlight > 0) await new Promise((res) => { drained = res; });
  const elapsed = (lastAnswer - t0) / 1000, cpu = process.cpuUsage(cpu0);
  if (opt.hold) process.stdout.write('done\n');

  // every acknowledged send reaches its listener once (a send refused as
  // "not replicated" was stored and is delivered too)
  phase = 'the listeners';
  const want = acks + notReplicated;
  const got = () => listeners.reduce((a, l) => a + l.got, 0);
  for (let k = 0; k < 100 && got() < want; k++) await new Promise((res) => setTimeout(res, 50));
  await new Promise((res) => setTimeout(res, 200)); // a duplicate would show by now
  const delivered = got();
  phase = 'close';
  for (const c of [...senders, ...listeners]) c.ws.close();

  latency.sort((a, b) => a - b);
  const f = (x) => x.toFixed(2);
  console.log(`senders=${opt.senders} window=${opt.window} sends=${sends} acks=${acks}` +
              ` not_replicated=${notReplicated} other_errors=${otherErrors}` +
              ` elapsed_s=${elapsed.toFixed(3)} acks_per_s=${(acks / elapsed).toFixed(0)}` +
              ` ack_p50_ms=${f(pct(latency, 0.5))} ack_p99_ms=${f(pct(latency, 0.99))}` +
              ` ack_max_ms=${f(latency.length ? latency[latency.length - 1] : 0)}` +
              ` delivered=${delivered} client_cpu_s=${((cpu.user + cpu.system) / 1e6).toFixed(2)}`);
  if (latency.length !== sends) fail(`${sends - latency.length} sends without an answer`);
  if (otherErrors) fail(`${otherErrors} sends refused: ${firstOther}`);
  if (delivered !== want) fail(`listeners received ${delivered} of ${want} stored messages`);
  process.exit(0);
}

main().catch((e) => fail(e.message));
