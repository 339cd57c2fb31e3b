// redis-chat web page: the typed protocol (redis-chat.v1, docs/protocol.md)
// in a browser. Everything shown is set with textContent: a name or a
// message is never parsed as HTML.
'use strict';

const PROTOCOL = 'redis-chat.v1';
const HISTORY_ON_JOIN = 50;
const BACKOFF_MIN_MS = 500, BACKOFF_MAX_MS = 30000;

const $ = (id) => document.getElementById(id);

const S = {
  name: '',
  token: '',
  rooms: new Map(),  // name -> room state, in the order joined
  current: null,     // the room shown
  ws: null,
  welcomed: false,
  attempt: 0,        // failed connects in a row (backoff)
  timer: null,
  countdown: null,   // the interval showing the seconds left of a wait
  stopped: true,     // no reconnecting (logged out, name taken, token refused)
  seq: 0,            // request ids
  sends: new Map(),  // request id -> the entry of a message waiting for its ack
};

// ---- rooms and their logs ---------------------------------------------------

function roomLabel(name) {
  return name === '' ? 'main chat' : '#' + name;
}

function roomState(name) {
  let r = S.rooms.get(name);
  if (!r) {
    const ol = document.createElement('ol');
    ol.className = 'log';
    ol.hidden = true;
    ol.tabIndex = 0;
    ol.setAttribute('aria-label', 'Messages in ' + roomLabel(name));
    ol.dataset.room = name;
    r = { name, ol, seen: new Set(), lastId: null, people: new Set(), joined: false,
          unread: 0 };
    $('logs').appendChild(ol);
    S.rooms.set(name, r);
  }
  return r;
}

function dropRoom(name) {
  const r = S.rooms.get(name);
  if (!r) return;
  r.ol.remove();
  S.rooms.delete(name);
  if (S.current === name) show(S.rooms.size ? S.rooms.keys().next().value : null);
  renderRooms();
}

function timeOf(ts) {
  const d = new Date(typeof ts === 'number' ? ts : Date.now());
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

// Add a line to a room's log. kind: message | notice | direct | info.
function addLine(room, e) {
  const r = roomState(room);
  const li = document.createElement('li');
  const time = document.createElement('time');
  time.className = 'time';
  time.textContent = timeOf(e.ts);
  if (typeof e.ts === 'number') time.dateTime = new Date(e.ts).toISOString();
  li.appendChild(time);
  li.className = e.kind;
  if (e.mine) li.classList.add('mine');
  if (e.msgId) li.dataset.msgId = e.msgId;
  if (e.kind === 'message' || e.kind === 'direct') {
    const who = document.createElement('span');
    who.className = 'who';
    who.textContent = e.kind === 'direct'
      ? (e.mine ? `you → ${e.to}` : `${e.user} → you`) : (e.user === '' ? '(outside)' : e.user);
    li.appendChild(who);
  }
  const text = document.createElement('span');
  text.className = 'text';
  text.textContent = e.text;
  li.appendChild(text);
  const stick = r.ol.scrollTop + r.ol.clientHeight >= r.ol.scrollHeight - 4;
  r.ol.appendChild(li);
  if (stick) r.ol.scrollTop = r.ol.scrollHeight;
  if (room !== S.current && e.kind !== 'info') {
    r.unread++;
    renderRooms();
  }
  return li;
}

function renderRooms() {
  const ul = $('rooms');
  ul.replaceChildren();
  for (const r of S.rooms.values()) {
    const li = document.createElement('li');
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = roomLabel(r.name);
    b.dataset.room = r.name;
    if (r.name === S.current) b.setAttribute('aria-current', 'true');
    if (r.unread > 0) {
      const u = document.createElement('span');
      u.className = 'unread';
      u.textContent = String(r.unread);
      u.setAttribute('aria-label', `${r.unread} unread`);
      b.appendChild(u);
    }
    b.addEventListener('click', () => show(r.name));
    li.appendChild(b);
    ul.appendChild(li);
  }
}

function renderPeople() {
  const ul = $('people'), to = $('say-to');
  const r = S.rooms.get(S.current);
  const names = r ? [...r.people].sort() : [];
  ul.replaceChildren();
  const keep = to.value;
  to.replaceChildren(new Option('everyone', ''));
  for (const n of names) {
    const li = document.createElement('li');
    li.textContent = n;
    if (n === S.name) li.className = 'me';
    ul.appendChild(li);
    if (n !== S.name) to.appendChild(new Option(n, n));
  }
  to.value = names.includes(keep) ? keep : '';
  $('people-title').textContent = `Here (${names.length})`;
}

// Show a room (the room is in the page's URL: a link opens it).
function show(name) {
  S.current = name;
  for (const r of S.rooms.values()) r.ol.hidden = r.name !== name;
  $('room-title').textContent = name === null ? 'no room' : roomLabel(name);
  $('leave').disabled = name === null;
  if (name !== null) {
    const r = S.rooms.get(name);
    r.unread = 0;
    r.ol.scrollTop = r.ol.scrollHeight;
    const hash = name === '' ? '' : '#' + encodeURIComponent(name);
    if (location.hash !== hash) history.replaceState(null, '', location.pathname + hash);
  }
  renderRooms();
  renderPeople();
}

function roomOfHash() {
  try {
    return decodeURIComponent(location.hash.slice(1));
  } catch (e) {
    return '';
  }
}

// ---- the connection -------------------------------------------------------------

function setStatus(state, text) {
  const st = $('status');
  st.dataset.state = state;
  st.textContent = text;
  $('say').querySelector('button').disabled = state !== 'online';
}

function send(req) {
  if (!S.ws || S.ws.readyState !== WebSocket.OPEN || !S.welcomed) return false;
  S.ws.send(JSON.stringify(req));
  return true;
}

function nextId() {
  return 'r' + (++S.seq);
}

// What a join asks to be replayed: everything after the last message seen
// (a resume), else the recent history.
function replayArgs(r) {
  return r && r.lastId ? { after: r.lastId } : { history: HISTORY_ON_JOIN };
}

// No wait pending: neither the reconnect nor its countdown.
function cancelWait() {
  clearTimeout(S.timer);
  clearInterval(S.countdown);
  S.timer = S.countdown = null;
}

function connect() {
  cancelWait();
  if (S.stopped) return;
  const home = S.current !== null ? S.current : '';
  const r = S.rooms.get(home);
  const replay = replayArgs(r);
  const query = replay.after ? `after=${encodeURIComponent(replay.after)}` : `history=${replay.history}`;
  const path = `/chat/${home === '' ? '' : encodeURIComponent(home) + '/'}${encodeURIComponent(S.name)}`;
  const url = `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}${path}?${query}`;
  const protocols = S.token ? [PROTOCOL, S.token] : [PROTOCOL];
  let ws;
  setStatus('connecting', 'connecting…');
  try {
    ws = new WebSocket(url, protocols);
  } catch (e) {
    stop(`cannot connect: ${e.message}`);
    return;
  }
  S.ws = ws;
  S.welcomed = false;
  ws.onmessage = (m) => {
    let ev;
    try {
      ev = JSON.parse(m.data);
    } catch (e) {
      return;
    }
    onEvent(ev);
  };
  ws.onclose = (c) => onClose(ws, c, path);
}

function onWelcome(ev) {
  const r = roomState(ev.room);
  r.joined = true;
  r.people.add(S.name);
  if (!S.welcomed) {
    // the connection's room: now the others come back, each resuming
    S.welcomed = true;
    S.attempt = 0;
    chatError('');
    setStatus('online', `online as ${S.name}`);
    $('login').hidden = true;
    $('chat').hidden = false;
    for (const other of S.rooms.values()) {
      if (other.name !== ev.room && !other.joined)
        send({ type: 'join', room: other.name, id: nextId(), ...replayArgs(other) });
    }
    if (S.current === null) show(ev.room);
    else show(S.current);
    $('say-text').focus();
  }
  send({ type: 'who', room: ev.room });
  renderRooms();
}

function onEvent(ev) {
  switch (ev.type) {
  case 'welcome':
    onWelcome(ev);
    break;
  case 'message': {
    const r = roomState(ev.room);
    if (ev.msg_id) {
      if (r.seen.has(ev.msg_id)) return; // shown already (a resume overlaps)
      r.seen.add(ev.msg_id);
      r.lastId = ev.msg_id;
    }
    addLine(ev.room, { kind: ev.to ? 'direct' : 'message', user: ev.user, to: ev.to,
                       text: ev.text, ts: ev.ts, msgId: ev.msg_id });
    break;
  }
  case 'history':
    if (ev.truncated)
      addLine(ev.room, { kind: 'info', text: 'Some earlier messages are no longer kept: ' +
                                              'what was said meanwhile may be missing.' });
    break;
  case 'joined': {
    const r = roomState(ev.room);
    r.people.add(ev.user);
    addLine(ev.room, { kind: 'notice', text: `${ev.user} joined`, ts: ev.ts });
    if (ev.room === S.current) renderPeople();
    break;
  }
  case 'left':
    if (ev.user === S.name) {
      dropRoom(ev.room);
      break;
    }
    roomState(ev.room).people.delete(ev.user);
    addLine(ev.room, { kind: 'notice', text: `${ev.user} left`, ts: ev.ts });
    if (ev.room === S.current) renderPeople();
    break;
  case 'presence': {
    const r = roomState(ev.room);
    r.people = new Set(ev.users);
    r.people.add(S.name);
    if (ev.room === S.current) renderPeople();
    break;
  }
  case 'ack': {
    const p = S.sends.get(ev.id);
    if (!p) break;
    S.sends.delete(ev.id);
    p.li.classList.remove('pending');
    if (ev.msg_id) {
      p.li.dataset.msgId = ev.msg_id;
      roomState(p.room).seen.add(ev.msg_id); // a resume must not show it twice
    }
    break;
  }
  case 'error':
    onError(ev);
    break;
  default:
    break;
  }
}

function onError(ev) {
  const p = ev.id ? S.sends.get(ev.id) : null;
  if (p) {
    S.sends.delete(ev.id);
    p.li.classList.remove('pending');
    p.li.classList.add('failed');
    p.li.title = ev.reason;
    p.li.querySelector('.text').textContent += `  (not delivered: ${ev.reason})`;
    return;
  }
  if (ev.request === 'join' && ev.room !== null && !S.welcomed) {
    loginError(`${roomLabel(ev.room)}: ${ev.reason}`);
    return;
  }
  if (ev.request === 'join' && ev.room !== null) {
    const r = S.rooms.get(ev.room);
    if (r && !r.joined) dropRoom(ev.room);
  }
  chatError(ev.room !== null && ev.room !== undefined
    ? `${roomLabel(ev.room)}: ${ev.reason}` : ev.reason);
}

function chatError(text) {
  $('chat-error').textContent = text;
}

function loginError(text) {
  $('login-error').textContent = text;
}

// Close codes (README "Reconnecting clients"): what the page does next.
const CLOSE_TEXT = {
  1001: 'the server is going away',
  1008: 'closed by the server (policy)',
  1011: 'the server had an internal error',
  1013: 'the server asks to try again later',
};

async function onClose(ws, c, path) {
  if (S.ws !== ws) return;
  S.ws = null;
  const wasOnline = S.welcomed;
  S.welcomed = false;
  for (const r of S.rooms.values()) r.joined = false;
  for (const p of S.sends.values()) {
    p.li.classList.remove('pending');
    p.li.classList.add('failed');
    p.li.querySelector('.text').textContent += '  (connection lost: maybe not delivered)';
  }
  S.sends.clear();
  if (c.code === 4409) {
    stop(`The name ${S.name} is already taken in ${roomLabel(S.current || '')}: pick another.`);
    return;
  }
  if (c.code === 4401) {
    $('token-row').hidden = false;
    stop(`Access token refused: ${c.reason || 'token required'}.`);
    $('login-token').focus();
    return;
  }
  if (!wasOnline && c.code === 1006) {
    // refused before the upgrade: the HTTP answer says why (a browser
    // cannot read it from the WebSocket)
    const why = await refusal(path);
    if (why) {
      stop(why);
      return;
    }
  }
  const reason = c.reason || CLOSE_TEXT[c.code] || (wasOnline ? 'connection lost' : 'cannot reach the server');
  if (wasOnline) chatError(`Disconnected: ${reason}. Reconnecting…`);
  schedule(reason);
}

// The reason a plain GET of the chat URL gives (400 bad name, 403 origin,
// 429 too many connections), or null when the URL itself is fine.
async function refusal(path) {
  try {
    const res = await fetch(path, { cache: 'no-store' });
    if (res.status === 400 || res.status === 403 || res.status === 404)
      return `Refused: ${(await res.text()).trim()}`;
  } catch (e) {
    // unreachable: reconnect
  }
  return null;
}

function schedule(reason) {
  if (S.stopped) return;
  // jittered exponential backoff: 0.5 s doubling to 30 s, each wait a random
  // half to whole of it, so a restarted server is not hit by everyone at once
  const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** S.attempt);
  const wait = Math.round(cap / 2 + Math.random() * cap / 2);
  S.attempt++;
  let left = Math.ceil(wait / 1000);
  setStatus('waiting', `${reason}: reconnecting in ${left} s`);
  S.countdown = setInterval(() => {
    if (--left > 0) setStatus('waiting', `${reason}: reconnecting in ${left} s`);
  }, 1000);
  S.timer = setTimeout(connect, wait);
}

// No more reconnecting: back to the form with why.
function stop(why) {
  S.stopped = true;
  cancelWait();
  if (S.ws) S.ws.close(1000);
  S.ws = null;
  setStatus('offline', 'not connected');
  $('chat').hidden = true;
  $('login').hidden = false;
  loginError(why);
  $('login-name').focus();
}

// ---- what the user does ----------------------------------------------------------

function onLogin(e) {
  e.preventDefault();
  const name = $('login-name').value.trim();
  const room = $('login-room').value.trim();
  if (!name) return;
  if (name !== S.name) {
    // another name: another user, who has seen nothing yet
    for (const r of S.rooms.values()) r.ol.remove();
    S.rooms.clear();
  }
  S.name = name;
  S.token = $('login-token').value.trim();
  try {
    localStorage.setItem('redis-chat.name', name);
  } catch (err) { /* private mode */ }
  loginError('');
  chatError('');
  roomState(room);
  S.current = room;
  S.stopped = false;
  S.attempt = 0;
  connect();
}

function onSay(e) {
  e.preventDefault();
  const input = $('say-text'), to = $('say-to').value;
  const text = input.value;
  if (!text.trim() || S.current === null) return;
  const id = nextId();
  const req = to ? { type: 'direct', room: S.current, to, text, id }
                 : { type: 'send', room: S.current, text, id };
  if (!send(req)) {
    chatError('Not connected: the message was not sent.');
    return;
  }
  chatError('');
  input.value = '';
  const li = addLine(S.current, { kind: to ? 'direct' : 'message', user: S.name, to, text,
                                  mine: true });
  if (!to) {
    li.classList.add('pending');
    S.sends.set(id, { room: S.current, li });
  }
}

function onJoin(e) {
  e.preventDefault();
  const input = $('join-room');
  const room = input.value.trim();
  input.value = '';
  joinRoom(room);
}

function joinRoom(room) {
  if (S.rooms.has(room)) {
    show(room);
    return;
  }
  const r = roomState(room);
  show(room);
  if (!send({ type: 'join', room, id: nextId(), ...replayArgs(r) }))
    chatError('Not connected: the room is joined when the connection is back.');
}

function onLeave() {
  if (S.current === null) return;
  if (!send({ type: 'leave', room: S.current })) dropRoom(S.current);
}

function onHash() {
  const room = roomOfHash();
  if (!$('chat').hidden && room !== S.current) joinRoom(room);
  else if ($('chat').hidden) $('login-room').value = room;
}

document.addEventListener('DOMContentLoaded', () => {
  $('login').addEventListener('submit', onLogin);
  $('say').addEventListener('submit', onSay);
  $('join-form').addEventListener('submit', onJoin);
  $('leave').addEventListener('click', onLeave);
  window.addEventListener('hashchange', onHash);
  $('login-room').value = roomOfHash();
  try {
    $('login-name').value = localStorage.getItem('redis-chat.name') || '';
  } catch (err) { /* private mode */ }
  setStatus('offline', 'not connected');
  $('login-name').focus();
  $('login-name').select(); // a remembered name: typing replaces it
});
