// eddy chat: the page's whole program. Plain JavaScript, no build step.
//
// Messages are shown by building DOM nodes and setting their textContent:
// nothing a peer sends is ever parsed as HTML.
//
// Transports, in order of preference: WebSocket (GET ws), then server-sent
// events (GET events) with POST send, then long-polling (GET poll?since=ID)
// with POST send. A transport that cannot open falls back to the next one;
// ?transport=sse or ?transport=poll in the page's address starts lower.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const list = $('messages');
  const status = $('status');
  const joinForm = $('join');
  const talkForm = $('talk');
  const nameInput = $('name');
  const textInput = $('text');
  const errorLine = $('error');
  const order = ['ws', 'sse', 'poll'];
  const labels = { ws: 'WebSocket', sse: 'server-sent events', poll: 'long-polling' };

  let name = '';
  // The id of the last message received: where a long-poll resumes. No
  // transport repeats a message (SSE resumes after Last-Event-ID, polls
  // after this id), and after a server restart ids start again from 1, so
  // messages are not filtered by id.
  let lastId = 0;
  let sendFn = null; // how the current transport sends one message

  function setStatus(state, transport) {
    status.dataset.state = state;
    document.body.dataset.transport = transport;
    status.textContent = state === 'open' ? 'connected by ' + labels[transport]
      : state === 'closed' ? 'disconnected' : 'connecting…';
  }

  function showError(text) {
    errorLine.textContent = text || '';
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    node.textContent = text;
    return node;
  }

  // One message {id, time, name, text} from the server, as a list item.
  function show(m) {
    if (!m || typeof m.id !== 'number') return;
    lastId = m.id;
    const when = new Date(m.time);
    const item = document.createElement('li');
    item.dataset.id = String(m.id);
    const time = el('time', '', when.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }));
    time.dateTime = when.toISOString();
    item.append(time, el('span', 'name', String(m.name)), el('span', 'text', String(m.text)));
    const atBottom = list.parentElement.scrollHeight - list.parentElement.scrollTop
      <= list.parentElement.clientHeight + 40;
    list.append(item);
    if (atBottom) item.scrollIntoView({ block: 'end' });
  }

  // A frame or event from the server: a message, or {"error": ...}.
  function receive(data) {
    let m;
    try {
      m = JSON.parse(data);
    } catch (e) {
      return;
    }
    if (m && typeof m.error === 'string') showError(m.error);
    else show(m);
  }

  function next(transport) {
    const i = order.indexOf(transport);
    start(order[Math.min(i + 1, order.length - 1)]);
  }

  // POST send, for the transports that only receive.
  async function post(message) {
    try {
      const r = await fetch('send', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(message),
      });
      if (r.status === 204) return true;
      const body = await r.json().catch(() => ({}));
      showError(body.error || 'the server answered ' + r.status);
    } catch (e) {
      showError('could not send: ' + e.message);
    }
    return false;
  }

  function startWebSocket() {
    if (!window.WebSocket) return next('ws');
    const url = new URL('ws', location.href);
    url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    url.search = '';
    let opened = false;
    const ws = new WebSocket(url);
    setStatus('connecting', 'ws');
    ws.onopen = () => {
      opened = true;
      setStatus('open', 'ws');
      sendFn = (message) => {
        ws.send(JSON.stringify(message));
        return true;
      };
    };
    ws.onmessage = (e) => receive(e.data);
    ws.onclose = () => {
      sendFn = null;
      if (!opened) return next('ws');
      setStatus('closed', 'ws');
      setTimeout(startWebSocket, 2000);
    };
  }

  function startEvents() {
    if (!window.EventSource) return next('sse');
    let opened = false;
    const es = new EventSource('events');
    setStatus('connecting', 'sse');
    sendFn = post;
    es.onopen = () => {
      opened = true;
      setStatus('open', 'sse');
    };
    es.onmessage = (e) => receive(e.data);
    es.onerror = () => {
      if (!opened) {
        es.close();
        return next('sse');
      }
      // EventSource reconnects by itself, sending Last-Event-ID.
      setStatus(es.readyState === EventSource.CLOSED ? 'closed' : 'connecting', 'sse');
    };
  }

  async function startPolling() {
    sendFn = post;
    setStatus('open', 'poll');
    for (;;) {
      try {
        const r = await fetch('poll?since=' + lastId, { cache: 'no-store' });
        if (!r.ok) throw new Error('the server answered ' + r.status);
        setStatus('open', 'poll');
        (await r.json()).forEach(show);
      } catch (e) {
        setStatus('closed', 'poll');
        await new Promise((resolve) => setTimeout(resolve, 2000));
      }
    }
  }

  function start(transport) {
    if (transport === 'ws') startWebSocket();
    else if (transport === 'sse') startEvents();
    else startPolling();
  }

  joinForm.addEventListener('submit', (e) => {
    e.preventDefault();
    name = nameInput.value.trim();
    if (!name) return;
    try {
      localStorage.setItem('eddy-chat-name', name);
    } catch (err) {
      // private browsing: the name is simply not remembered
    }
    $('me').textContent = name;
    joinForm.hidden = true;
    talkForm.hidden = false;
    textInput.focus();
  });

  talkForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    const text = textInput.value;
    if (!text || !sendFn) return;
    showError('');
    // Cleared at once, so that what is typed while a POST is on its way
    // is kept; a message that could not be sent comes back to the input.
    textInput.value = '';
    if (!(await sendFn({ name: name, text: text })) && !textInput.value) {
      textInput.value = text;
    }
  });

  try {
    nameInput.value = localStorage.getItem('eddy-chat-name') || '';
  } catch (err) {
    // no storage: start with an empty name
  }
  const forced = new URLSearchParams(location.search).get('transport');
  start(order.includes(forced) ? forced : 'ws');
})();
