#!/usr/bin/env node
// tests/browser/check_browser.js -- the web page in real headless Chromium.
//
// Starts a TLS redis-server with a password (tests/redis-tls.sh) and real
// redis-chat instances on free loopback ports, opens the page served by
// them in Debian's chromium driven by puppeteer-core, and uses it as a
// person would: forms, buttons, the Enter key; one instance also serves the
// page over https and its chat over wss://. Each test saves a
// screenshot under $OUT (default: the build directory's
// browser-screenshots/).
//
// Environment (tests/browser/check_browser.sh sets it): REDIS_CHAT (the
// binary), SRCDIR (the source tree), CHROMIUM (the browser), NODE_PATH
// (puppeteer-core), OUT. Exits 0 when every test passed, 1 otherwise.
'use strict';

const { spawn, execFileSync } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const net = require('net');
const os = require('os');
const path = require('path');
const puppeteer = require('puppeteer-core');

const BIN = process.env.REDIS_CHAT;
const SRCDIR = process.env.SRCDIR;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const OUT = process.env.OUT || path.join(path.dirname(BIN || '.'), 'browser-screenshots');
const PASSWORD = 'browser-test-pw';
const SECRET = 'a-browser-test-secret-of-at-least-32-bytes';
const WAIT_MS = 15000;

const tmp = fs.mkdtempSync(path.join(process.env.TMPDIR || os.tmpdir(), 'rc-browser-'));
const instances = [];
let redisPid = 0;

// ---- processes ---------------------------------------------------------------------

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function get(port, p, headers = {}) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, headers }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('error', () => resolve({ status: 0, headers: {}, body: '' }));
  });
}

async function startRedis() {
  const port = await freePort();
  const dir = path.join(tmp, 'redis');
  fs.mkdirSync(dir);
  execFileSync(path.join(SRCDIR, 'tests/redis-tls.sh'), [dir, String(port), PASSWORD],
               { stdio: 'inherit' });
  redisPid = Number(fs.readFileSync(path.join(dir, 'redis.pid'), 'utf8'));
  return { port, ca: path.join(dir, 'tls/ca.crt'), tlsDir: path.join(dir, 'tls') };
}

// A redis-chat instance; start() again after stop() reuses its port.
class Instance {
  // tls: a wss:// port too (the test Redis's certificate), where the page is served
  constructor(name, redis, extra = '', { tls = false } = {}) {
    this.name = name;
    this.redis = redis;
    this.extra = extra;
    this.tls = tls;
    this.dir = path.join(tmp, name);
    fs.mkdirSync(this.dir);
    this.proc = null;
  }

  async start() {
    if (!this.port) this.port = await freePort();
    // (two picks of a free port can be the same one)
    while (this.tls && (!this.tlsPort || this.tlsPort === this.port)) this.tlsPort = await freePort();
    const conf = path.join(this.dir, 'redis-chat.conf');
    fs.writeFileSync(conf, [
      `port ${this.port}`, 'bind 127.0.0.1', 'workers 2',
      `broker-socket ${path.join(this.dir, 'broker.sock')}`,
      `logfile ${path.join(this.dir, 'redis-chat.log')}`, 'log-level info',
      'redis-host 127.0.0.1', `redis-port ${this.redis.port}`, `redis-password ${PASSWORD}`,
      'redis-tls yes', `redis-tls-ca-cert ${this.redis.ca}`, 'redis-tls-server-name localhost',
      ...(this.tls ? [`tls-port ${this.tlsPort}`,
        `tls-cert ${path.join(this.redis.tlsDir, 'redis.crt')}`,
        `tls-key ${path.join(this.redis.tlsDir, 'redis.key')}`] : []),
      this.extra, ''].join('\n'));
    const out = fs.openSync(path.join(this.dir, 'stderr.log'), 'a');
    this.proc = spawn(BIN, ['-c', conf], { stdio: ['ignore', out, out] });
    fs.closeSync(out);
    this.exited = new Promise((r) => this.proc.on('exit', r));
    for (let i = 0; i < 200; i++) {
      if ((await get(this.port, '/healthz')).status === 200) return this;
      await sleep(50);
    }
    throw new Error(`instance ${this.name} did not become healthy`);
  }

  get url() {
    return this.tls ? `https://127.0.0.1:${this.tlsPort}/` : `http://127.0.0.1:${this.port}/`;
  }

  async stop() {
    if (!this.proc) return;
    this.proc.kill('SIGTERM');
    await this.exited;
    this.proc = null;
  }

  // SIGKILL the workers: their connections drop (the master starts others)
  killWorkers() {
    const out = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(this.proc.pid)])
      .toString();
    for (const line of out.split('\n').filter((l) => /redis-chat: worker/.test(l)))
      process.kill(Number(line.trim().split(/\s+/)[0]), 'SIGKILL');
  }
}

function cleanup() {
  for (const i of instances) if (i.proc) i.proc.kill('SIGKILL');
  if (redisPid) {
    try {
      process.kill(redisPid, 'SIGKILL');
    } catch (e) { /* gone */ }
  }
  fs.rmSync(tmp, { recursive: true, force: true });
}

// ---- the page, as a person uses it -------------------------------------------------------

let browser;
const pages = []; // every page opened, for the errors they logged

async function openPage(inst, hash = '', viewport = { width: 1100, height: 720 }) {
  const page = await browser.newPage();
  await page.setViewport(viewport);
  page.errors = [];
  page.label = `${inst.name}${hash}`;
  pages.push(page);
  page.on('pageerror', (e) => page.errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') page.errors.push(m.text()); });
  await page.goto(inst.url + hash, { waitUntil: 'load' });
  return page;
}

// (a background tab runs no animation frames: what waits for one hangs)
async function fill(page, selector, value) {
  await page.bringToFront();
  await page.$eval(selector, (el) => { el.value = ''; });
  await page.type(selector, value);
}

async function login(page, name, { room = null, token = null, expectOnline = true } = {}) {
  await fill(page, '#login-name', name);
  if (room !== null) await fill(page, '#login-room', room);
  if (token !== null) await fill(page, '#login-token', token);
  await page.focus('#login-name');
  await page.keyboard.press('Enter');
  if (expectOnline) await waitOnline(page);
}

// (reconnecting may wait out a backoff of up to 30 s)
async function waitOnline(page, timeout = WAIT_MS) {
  await page.waitForFunction(() => document.querySelector('#status').dataset.state === 'online',
                             { timeout, polling: 50 });
}

async function say(page, text) {
  await fill(page, '#say-text', text);
  await page.keyboard.press('Enter');
}

// The lines of a room's log: { kind, who, text, id, pending }.
function lines(page, room) {
  return page.$$eval(`ol.log[data-room="${room}"] li`, (lis) => lis.map((li) => ({
    kind: li.className.split(' ')[0],
    who: (li.querySelector('.who') || {}).textContent || '',
    text: li.querySelector('.text').textContent,
    id: li.dataset.msgId || '',
    pending: li.classList.contains('pending'),
  })));
}

async function waitLine(page, room, text, who = null) {
  await page.waitForFunction((r, t, w) => [...document.querySelectorAll(`ol.log[data-room="${r}"] li`)]
    .some((li) => li.querySelector('.text').textContent === t &&
                  (w === null || (li.querySelector('.who') || {}).textContent === w)),
  { timeout: WAIT_MS, polling: 50 }, room, text, who);
}

function people(page) {
  return page.$$eval('#people li', (lis) => lis.map((li) => li.textContent));
}

async function waitPeople(page, pred, what) {
  const t0 = Date.now();
  for (;;) {
    const p = await people(page);
    if (pred(p)) return p;
    if (Date.now() - t0 > WAIT_MS) throw new Error(`people list never ${what}: ${JSON.stringify(p)}`);
    await sleep(100);
  }
}

async function shot(page, name) {
  await page.bringToFront();
  fs.mkdirSync(OUT, { recursive: true });
  await page.screenshot({ path: path.join(OUT, `${name}.png`) });
}

function token(sub, ttl = 3600) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub, exp: Math.floor(Date.now() / 1000) + ttl })}`;
  return `${body}.${crypto.createHmac('sha256', SECRET).update(body).digest('base64url')}`;
}

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

// ---- tests --------------------------------------------------------------------------------

let A, B, C, D;
let step = ''; // what a test was doing, for its failure

const tests = {
  // the page, its headers, and the seed's answer to everyone else
  async served() {
    const page = await get(A.port, '/', { Accept: 'text/html,application/xhtml+xml' });
    assert(page.status === 200 && /text\/html/.test(page.headers['content-type']), 'no page for a browser');
    const csp = page.headers['content-security-policy'] || '';
    assert(/default-src 'none'/.test(csp) && /script-src 'self'/.test(csp) && !/unsafe/.test(csp),
           `weak or missing CSP: ${csp}`);
    const seed = await get(A.port, '/');
    assert(seed.status === 200 && seed.body === 'you are good to go!\n', `GET / without Accept: ${seed.body}`);
    const js = await get(A.port, '/chat.js');
    assert(js.status === 200 && /javascript/.test(js.headers['content-type']), 'no /chat.js');
    const again = await get(A.port, '/chat.js', { 'If-None-Match': js.headers.etag });
    assert(again.status === 304, `revalidation gave ${again.status}`);
  },

  // two pages on two instances chat both ways; presence follows them
  async twoInstances() {
    const alice = await openPage(A), bob = await openPage(B);
    await login(alice, 'alice');
    await login(bob, 'bob');
    await waitPeople(alice, (p) => p.includes('bob') && p.includes('alice'), 'shows bob');
    await say(alice, 'hello bob, from instance A');
    await waitLine(bob, '', 'hello bob, from instance A', 'alice');
    await say(bob, 'hi alice, from instance B');
    await waitLine(alice, '', 'hi alice, from instance B', 'bob');
    // the sender's own line is acknowledged (no longer pending) with its id
    await alice.waitForFunction(() => {
      const li = [...document.querySelectorAll('ol.log[data-room=""] li.mine')].pop();
      return li && !li.classList.contains('pending') && li.dataset.msgId;
    }, { timeout: WAIT_MS, polling: 50 });
    // a direct message reaches bob alone, marked as direct
    await alice.bringToFront();
    await alice.select('#say-to', 'bob');
    await say(alice, 'psst, bob only');
    await bob.waitForFunction(() => [...document.querySelectorAll('li.direct')].some((li) =>
      li.querySelector('.text').textContent === 'psst, bob only' &&
      li.querySelector('.who').textContent === 'alice → you'), { timeout: WAIT_MS, polling: 50 });
    await alice.select('#say-to', '');
    await shot(alice, 'two-instances-alice');
    await shot(bob, 'two-instances-bob');
    await bob.close();
    await waitPeople(alice, (p) => !p.includes('bob'), 'drops bob after he left');
    await waitLine(alice, '', 'bob left');
    this.alice = alice;
    assert(alice.errors.length === 0, `page errors: ${alice.errors.join('; ')}`);
  },

  // a link opens a room; the newcomer sees its history, then live messages
  async linkAndHistory() {
    const alice = this.alice;
    await fill(alice, '#join-room', 'lobby');
    await alice.keyboard.press('Enter');
    await alice.waitForSelector('#room-title');
    await alice.waitForFunction(() => location.hash === '#lobby', { timeout: WAIT_MS, polling: 50 });
    for (let i = 1; i <= 3; i++) await say(alice, `lobby message ${i}`);
    await waitLine(alice, 'lobby', 'lobby message 3');
    await alice.waitForFunction(() => !document.querySelector('li.pending'), { timeout: WAIT_MS, polling: 50 });
    const carol = await openPage(B, '#lobby');
    assert(await carol.$eval('#login-room', (el) => el.value) === 'lobby', 'the link did not name the room');
    await login(carol, 'carol');
    for (let i = 1; i <= 3; i++) await waitLine(carol, 'lobby', `lobby message ${i}`, 'alice');
    await waitPeople(carol, (p) => p.includes('alice') && p.includes('carol'), 'shows alice and carol');
    await say(alice, 'live after history');
    await waitLine(carol, 'lobby', 'live after history', 'alice');
    const got = (await lines(carol, 'lobby')).filter((l) => l.kind === 'message').map((l) => l.text);
    assert(JSON.stringify(got) === JSON.stringify(['lobby message 1', 'lobby message 2',
      'lobby message 3', 'live after history']), `carol's lobby: ${JSON.stringify(got)}`);
    await shot(carol, 'room-link-history');
    // the same page at phone width
    await carol.setViewport({ width: 390, height: 780 }); // (isMobile would reload the page)
    await waitOnline(carol);
    await shot(carol, 'phone-width');
    const wide = await carol.evaluate(() => document.documentElement.scrollWidth);
    assert(wide <= 390, `the page is ${wide}px wide on a 390px screen`);
    await carol.close();
  },

  // a page whose connection is cut comes back by itself and shows every
  // message said meanwhile exactly once, in order
  async reconnectResume() {
    const alice = this.alice;
    const dave = await openPage(B, '#lobby');
    await login(dave, 'dave');
    await waitLine(dave, 'lobby', 'live after history');
    const cuts = [
      ['instance stop', async () => { await B.stop(); }, async () => { await B.start(); }],
      ['workers killed', async () => { B.killWorkers(); }, async () => {}],
    ];
    let n = 0;
    for (const [what, cut, restore] of cuts) {
      step = `${what}: the cut`;
      await cut();
      step = `${what}: the page sees the cut`;
      await dave.waitForFunction(() => document.querySelector('#status').dataset.state !== 'online',
                                 { timeout: WAIT_MS, polling: 50 });
      step = `${what}: said meanwhile`;
      for (let i = 0; i < 5; i++) await say(alice, `while away (${what}) ${++n}`);
      await alice.waitForFunction(() => !document.querySelector('li.pending'), { timeout: WAIT_MS, polling: 50 });
      step = `${what}: restore`;
      await restore();
      step = `${what}: the page is back online`;
      await waitOnline(dave, 40000);
      step = `${what}: the page shows what was said meanwhile`;
      await waitLine(dave, 'lobby', `while away (${what}) ${n}`, 'alice');
      step = `${what}: live again`;
      await say(alice, `back (${what})`);
      await waitLine(dave, 'lobby', `back (${what})`, 'alice');
    }
    step = '';
    await shot(dave, 'reconnected');
    const msgs = (await lines(dave, 'lobby')).filter((l) => l.kind === 'message');
    const texts = msgs.map((l) => l.text);
    const ids = msgs.map((l) => l.id);
    assert(new Set(ids).size === ids.length, `a message shown twice: ${JSON.stringify(texts)}`);
    const want = ['live after history'];
    n = 0;
    for (const [what] of cuts) {
      for (let i = 0; i < 5; i++) want.push(`while away (${what}) ${++n}`);
      want.push(`back (${what})`);
    }
    const from = texts.indexOf('live after history');
    assert(JSON.stringify(texts.slice(from)) === JSON.stringify(want),
           `dave's lobby after the cuts: ${JSON.stringify(texts.slice(from))}`);
    await dave.close();
  },

  // markup in a message is shown as text and runs nothing; a name with
  // markup is refused, and the page says why
  async markupIsText() {
    const alice = this.alice;
    const evil = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script><b>bold</b>';
    const mallory = await openPage(A, '#lobby');
    await login(mallory, 'mallory');
    await say(mallory, evil);
    await waitLine(alice, 'lobby', evil, 'mallory');
    const state = await alice.evaluate(() => ({
      pwned: window.__pwned,
      imgs: document.querySelectorAll('#logs img, #logs script, #logs b').length,
    }));
    assert(state.pwned === undefined && state.imgs === 0, `markup ran or rendered: ${JSON.stringify(state)}`);
    await shot(alice, 'markup-as-text');
    await mallory.close();

    const bad = await openPage(A);
    await login(bad, '<img src=x onerror=alert(1)>', { expectOnline: false });
    await bad.waitForFunction(() => /user name contains/.test(document.querySelector('#login-error').textContent),
                              { timeout: WAIT_MS, polling: 50 });
    assert(await bad.evaluate(() => window.__pwned === undefined), 'a refused name ran script');
    await shot(bad, 'bad-name');
    await bad.close();
  },

  // the keyboard alone: the name field has the focus, Enter joins, the
  // message box has the focus then, Enter sends
  async keyboardOnly() {
    const page = await openPage(A);
    await page.bringToFront();
    assert(await page.evaluate(() => document.activeElement.id) === 'login-name', 'focus not on the name');
    await page.keyboard.type('kim');
    await page.keyboard.press('Enter');
    await waitOnline(page);
    assert(await page.evaluate(() => document.activeElement.id) === 'say-text', 'focus not on the message box');
    await page.keyboard.type('typed with the keyboard only');
    await page.keyboard.press('Enter');
    await waitLine(this.alice, '', 'typed with the keyboard only', 'kim');
    await page.close();
  },

  // a name in use is refused with a clear message
  async nameTaken() {
    const page = await openPage(B);
    await login(page, 'alice', { expectOnline: false });
    await page.waitForFunction(() => /already taken/.test(document.querySelector('#login-error').textContent),
                               { timeout: WAIT_MS, polling: 50 });
    assert(await page.$eval('#login', (f) => !f.hidden), 'the form is not shown again');
    await shot(page, 'name-taken');
    await page.close();
  },

  // with auth-secret: the page asks for a token, says why one is refused,
  // and gets in with a good one
  async tokens() {
    const page = await openPage(C);
    await login(page, 'erin', { expectOnline: false });
    await page.waitForFunction(() => /token required/.test(document.querySelector('#login-error').textContent),
                               { timeout: WAIT_MS, polling: 50 });
    assert(await page.$eval('#token-row', (r) => !r.hidden), 'no token field shown');
    await shot(page, 'token-required');
    await login(page, 'erin', { token: token('someone-else'), expectOnline: false });
    await page.waitForFunction(() => /token is for another user/.test(document.querySelector('#login-error').textContent),
                               { timeout: WAIT_MS, polling: 50 });
    await login(page, 'erin', { token: token('erin') });
    await shot(page, 'token-accepted');
    await page.close();
  },

  // the page an outside reader sees: the README's screenshot
  async readmeShot() {
    const alice = this.alice;
    // (clicked in the page: the list is redrawn as messages arrive, a
    // handle to a button may be gone by the time a mouse click lands)
    await alice.evaluate(() => document.querySelector('nav li button[data-room=""]').click());
    await alice.waitForFunction(() => location.hash === '', { timeout: WAIT_MS, polling: 50 });
    await shot(alice, 'redis-chat-page');
  },

  // leaving a room: its tab goes, the page shows another room, and the
  // others see the leave
  async leaveRoom() {
    const alice = this.alice;
    const watcher = await openPage(B, '#lobby');
    await login(watcher, 'wanda');
    await alice.evaluate(() => document.querySelector('nav li button[data-room="lobby"]').click());
    await alice.waitForFunction(() => location.hash === '#lobby', { timeout: WAIT_MS, polling: 50 });
    await alice.bringToFront();
    await alice.click('#leave');
    await alice.waitForFunction(() => !document.querySelector('nav li button[data-room="lobby"]') &&
      document.querySelector('#room-title').textContent === 'main chat', { timeout: WAIT_MS, polling: 50 });
    await waitLine(watcher, 'lobby', 'alice left');
    await waitPeople(watcher, (p) => !p.includes('alice'), 'drops alice');
    await shot(alice, 'left-room');
    await watcher.close();
  },

  // the page over https (instance D's wss:// port): it connects with wss://
  // and chats with a page on plain http (instance A)
  async overTls() {
    const erin = await openPage(D), frank = await openPage(A);
    assert(erin.url().startsWith('https://'), `D's page is at ${erin.url()}`);
    await login(erin, 'erin');
    await login(frank, 'frank');
    assert(await erin.evaluate(() => location.protocol) === 'https:', 'not over https');
    await say(erin, 'hello from an https page');
    await waitLine(frank, '', 'hello from an https page', 'erin');
    await say(frank, 'hello from an http page');
    await waitLine(erin, '', 'hello from an http page', 'frank');
    await shot(erin, 'over-tls');
    assert(erin.errors.length === 0, `page errors: ${erin.errors.join('; ')}`);
    await erin.close();
    await frank.close();
  },
};

async function main() {
  const redis = await startRedis();
  A = new Instance('a', redis);
  B = new Instance('b', redis);
  C = new Instance('c', redis, `auth-secret ${SECRET}`);
  D = new Instance('d', redis, '', { tls: true });
  instances.push(A, B, C, D);
  await Promise.all(instances.map((i) => i.start()));
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    // D's certificate is the test CA's, which this browser does not know
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
           '--ignore-certificate-errors'],
  });
  const ctx = {};
  let failed = 0;
  for (const [name, fn] of Object.entries(tests)) {
    const t0 = Date.now();
    try {
      await fn.call(ctx);
      console.log(`ok   ${name} (${Date.now() - t0} ms)`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${name}${step ? ` (${step})` : ''}: ${e.message}`);
      step = '';
      for (const p of pages) {
        if (p.isClosed() || p.mainFrame().detached) continue;
        const seen = await Promise.race([p.evaluate(() => ({
          status: document.querySelector('#status')?.textContent,
          error: `${document.querySelector('#login-error')?.textContent} ${document.querySelector('#chat-error')?.textContent}`,
          last: [...document.querySelectorAll('ol.log:not([hidden]) li')].slice(-4)
            .map((li) => `${li.className}: ${li.textContent}`),
        })), sleep(2000).then(() => 'unresponsive')]);
        console.log(`--- page ${p.label}: ${JSON.stringify(seen)}`);
        const errs = p.errors.filter((e) => !/ERR_CONNECTION_REFUSED|WebSocket connection/.test(e));
        if (errs.length) console.log(`    errors: ${errs.join(' | ')}`);
      }
      for (const i of instances) {
        const log = path.join(i.dir, 'stderr.log');
        if (fs.existsSync(log))
          console.log(`--- ${i.name} log tail\n${fs.readFileSync(log, 'utf8').split('\n').slice(-15).join('\n')}`);
      }
      if (name === 'twoInstances') break; // the rest needs alice
    }
  }
  await browser.close();
  console.log(`${Object.keys(tests).length} tests, ${failed} failed; screenshots in ${OUT}`);
  return failed;
}

main().then((failed) => {
  cleanup();
  process.exit(failed ? 1 : 0);
}, (e) => {
  console.log(`FAIL setup: ${e.stack}`);
  cleanup();
  process.exit(1);
});
