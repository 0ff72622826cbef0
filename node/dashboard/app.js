// The redisync dashboard: polls the registry (GET /v1/nodes) every second, shows a map's keys
// (GET /v1/maps/{map}) and its live changes (SSE, GET /v1/maps/{map}/watch). Until the registry
// answers, and while it cannot be read (Redis unreachable), it shows the node's own state
// (GET /v1/nodes?local=true, answered without Redis) under a banner that says why.
//
// Keys and values are user data: they are only ever set as textContent, never as HTML.
'use strict';

(function () {
  const TOKEN_KEY = 'redisync-token';
  const POLL_MS = 1000;
  const PAGE = 50;
  const MAX_CHANGES = 40;

  // Take ?token= once: keep it for this tab, and take it out of the address bar and history.
  const here = new URL(location.href);
  if (here.searchParams.has('token')) {
    sessionStorage.setItem(TOKEN_KEY, here.searchParams.get('token'));
    here.searchParams.delete('token');
    history.replaceState(null, '', here.pathname + here.search + here.hash);
  }
  const token = () => sessionStorage.getItem(TOKEN_KEY) || '';

  const $ = (id) => document.getElementById(id);

  // el builds an element: el('td', {className: 'num'}, 'text', child…).
  function el(tag, props, ...kids) {
    const e = document.createElement(tag);
    Object.assign(e, props || {});
    for (const k of kids) {
      if (k === null || k === undefined) continue;
      e.append(k instanceof Node ? k : String(k));
    }
    return e;
  }

  class Unauthorized extends Error {}
  // NodeError is an answer of the node that is an error (a 503 while Redis is unreachable…),
  // as opposed to no answer at all (the node itself unreachable: a TypeError of fetch).
  class NodeError extends Error {}

  async function api(path) {
    const headers = {};
    if (token()) headers.Authorization = 'Bearer ' + token();
    const res = await fetch(path, {headers, cache: 'no-store'});
    if (res.status === 401) throw new Unauthorized('token needed');
    if (!res.ok) {
      let msg = 'HTTP ' + res.status;
      try { msg = (await res.json()).error || msg; } catch (_) { /* not JSON */ }
      throw new NodeError(msg);
    }
    return res.json();
  }

  function setPill(id, text, cls, title) {
    const s = $(id);
    s.textContent = text;
    s.className = 'pill ' + (cls || '');
    if (title !== undefined) s.title = title;
  }
  // The page's own pill: whether the node it was opened on answers its polls.
  const setStatus = (text, cls) => setPill('status', text, cls);

  function showLogin(show) {
    $('login').hidden = !show;
    $('main').hidden = show;
  }

  $('login-form').addEventListener('submit', (e) => {
    e.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $('token-input').value);
    showLogin(false);
    restartWatch();
    refresh();
  });

  // Formatting.
  function ago(t) { return agoSeconds((Date.now() - Date.parse(t)) / 1000); }
  function agoSeconds(s) {
    return s < 0 ? '0.0 s ago' : s < 60 ? s.toFixed(1) + ' s ago' : duration(s) + ' ago';
  }
  function duration(s) {
    if (s < 60) return Math.floor(s) + 's';
    if (s < 3600) return Math.floor(s / 60) + 'm' + String(Math.floor(s % 60)).padStart(2, '0') + 's';
    if (s < 86400) return Math.floor(s / 3600) + 'h' + String(Math.floor(s % 3600 / 60)).padStart(2, '0') + 'm';
    return Math.floor(s / 86400) + 'd' + Math.floor(s % 86400 / 3600) + 'h';
  }
  const rate = (r) => (r || 0) < 10 ? (r || 0).toFixed(1) : Math.round(r).toLocaleString();
  const num = (v) => Number(v || 0).toLocaleString();
  const stateClass = {'in sync': 'ok', 'catching up': 'warn', 'loading': 'warn', 'diverged': 'bad', 'unknown': ''};
  const nodeClass = {live: 'ok', late: 'warn', gone: 'bad'};
  // A value read now by the registry's reader, else (an older node) the one reported.
  const now = (v, reported) => v === undefined ? reported : v;

  function numCell(v) { return el('td', {className: 'num'}, v); }

  // The registry view.
  let selfID = '';
  let knownMaps = [];

  function nodeState(view, n) {
    if (view.local) return el('span', {className: 'pill', title: 'the registry could not be read: this node answers, its record may be stale'}, 'this node');
    return el('span', {className: 'pill ' + (nodeClass[n.state] || '')}, n.state || 'live');
  }

  function renderNodes(view) {
    selfID = view.self;
    $('self').textContent = 'node ' + view.self;
    const body = $('nodes').tBodies[0];
    const rows = view.nodes.map((n) => el('tr', {className: n.state === 'late' ? 'late' : ''},
      el('td', {className: n.id === view.self ? 'self mono' : 'mono'}, n.id),
      el('td', {}, nodeState(view, n)),
      el('td', {className: 'mono'}, n.addr ? el('a', {href: 'http://' + n.addr + '/', rel: 'noreferrer'}, n.addr) : '–'),
      el('td', {}, n.version),
      el('td', {}, duration((Date.now() - Date.parse(n.started)) / 1000)),
      el('td', {}, n.heartbeat_age_seconds === undefined ? ago(n.heartbeat) : agoSeconds(n.heartbeat_age_seconds)),
      el('td', {className: 'num'}, view.local ? '–' : n.redis_up ? (n.redis_rtt_seconds * 1000).toFixed(2) + ' ms' : el('span', {className: 'pill bad'}, 'down')),
      numCell(rate(n.delivered_per_second)),
    ));
    for (const g of view.gone || []) {
      rows.push(el('tr', {className: 'gone'},
        el('td', {className: 'mono'}, g.id),
        el('td', {}, el('span', {className: 'pill bad'}, 'gone')),
        el('td', {colSpan: 6}, 'its record expired ' + agoSeconds(g.gone_seconds) + ' without it leaving')));
    }
    for (const r of rows) r.dataset.node = r.firstChild.textContent;
    body.replaceChildren(...rows);
  }

  function renderMaps(view) {
    const box = $('maps');
    if (!view.maps.length) {
      box.replaceChildren(el('p', {className: 'muted'}, 'no node serves a map'));
      return;
    }
    box.replaceChildren(...view.maps.map((a) => {
      const reps = [];
      for (const n of view.nodes) for (const m of n.maps) if (m.name === a.map) reps.push({node: n.id, state: n.state, m});
      // Digests must agree at equal (epoch, seq), and with Redis's at its head: the reader
      // marks a replica that does not as diverged.
      const byPos = {};
      for (const r of reps) if (r.m.ready) (byPos[r.m.epoch + ':' + r.m.seq] ||= new Set()).add(r.m.digest);
      const rows = reps.map(({node, state, m}) => {
        const same = byPos[m.epoch + ':' + m.seq];
        const differs = m.diverged === undefined ? same && same.size > 1 : m.diverged;
        const dcls = !m.ready ? 'digest' : differs ? 'digest differs' : 'digest same';
        const check = m.redis_match === undefined ? '–' : m.redis_match ? '✓' : '✗';
        const tr = el('tr', {className: state === 'late' ? 'late' : ''},
          el('td', {className: node === view.self ? 'self mono' : 'mono'}, node,
            state === 'late' ? ' ' : null, state === 'late' ? el('span', {className: 'pill warn'}, 'late') : null),
          el('td', {}, m.ready ? 'ready' : el('span', {className: 'pill warn'}, 'loading')),
          numCell(num(m.seq)),
          el('td', {className: 'num lag', title: 'the head in Redis, read now, minus the seq'}, num(now(m.lag_now, m.lag))),
          numCell(now(m.lag_seconds_now, m.lag_seconds).toFixed(3)),
          numCell(num(m.keys)),
          el('td', {className: 'mono ' + dcls, title: differs ? 'differs at the same seq' : ''}, m.digest),
          el('td', {className: 'num', title: 'matches Redis at the same seq'}, check),
          numCell(rate(m.writes_per_second)),
        );
        tr.dataset.node = node;
        return tr;
      });
      const table = el('table', {},
        el('thead', {}, el('tr', {},
          el('th', {}, 'node'), el('th', {}, 'replica'), el('th', {className: 'num'}, 'seq'),
          el('th', {className: 'num'}, 'lag'), el('th', {className: 'num'}, 'lag s'), el('th', {className: 'num'}, 'keys'),
          el('th', {}, 'digest'), el('th', {className: 'num'}, 'redis'), el('th', {className: 'num'}, 'writes/s'))),
        el('tbody', {}, ...rows));
      return el('div', {className: 'map', id: 'map-' + a.map},
        el('div', {className: 'map-head'},
          el('span', {className: 'name mono'}, a.map),
          el('span', {className: 'pill ' + (stateClass[a.state] || '')}, a.state),
          el('span', {className: 'muted'}, a.detail),
          a.head_now !== undefined && !view.local ? el('span', {className: 'muted head'}, '· head in Redis ' + num(a.head_now)) : null),
        table);
    }));
    const names = view.maps.map((a) => a.map);
    if (names.join('\n') !== knownMaps.join('\n')) {
      knownMaps = names;
      const sel = $('map-select');
      const keep = sel.value;
      sel.replaceChildren(...names.map((n) => el('option', {value: n}, n)));
      if (names.includes(keep)) sel.value = keep;
      if (sel.value !== keep) selectMap();
    }
  }

  function renderChannels(view) {
    const chans = {};
    for (const n of view.nodes) for (const c of n.channels) (chans[c.name] ||= []).push({node: n.id, c});
    const names = Object.keys(chans).sort();
    $('channels-section').hidden = names.length === 0;
    $('channels').replaceChildren(...names.map((name) => el('div', {className: 'map'},
      el('div', {className: 'map-head'}, el('span', {className: 'name mono'}, name)),
      el('table', {},
        el('thead', {}, el('tr', {}, el('th', {}, 'node'), el('th', {className: 'num'}, 'head seq'), el('th', {className: 'num'}, 'messages/s'))),
        el('tbody', {}, ...chans[name].map(({node, c}) => el('tr', {},
          el('td', {className: node === view.self ? 'self mono' : 'mono'}, node),
          numCell(num(c.seq)), numCell(rate(c.messages_per_second)))))))));
  }

  function render(view) {
    renderNodes(view);
    renderMaps(view);
    renderChannels(view);
  }

  // The cluster's health, from the registry: apart from the page's own pill.
  function renderHealth(view) {
    const h = view.health || {level: 'unknown', summary: '', problems: []};
    setPill('health', 'cluster: ' + h.summary, h.level === 'unknown' ? '' : h.level, 'the cluster\'s health, from the registry in Redis');
    const list = $('problems');
    list.className = 'problems ' + (h.level === 'bad' ? 'bad' : '');
    list.replaceChildren(...(h.problems || []).map((p) => el('li', {}, p)));
    list.hidden = !(h.problems || []).length;
  }

  // The registry is read by one request at a time: with Redis unreachable it takes the node's
  // read timeout to fail, and the page shows the node's own state meanwhile.
  let registryPending = false;
  let registryOK = false;   // the last registry read succeeded
  let registryError = '';   // why the last one failed

  function showBanner() {
    const b = $('banner');
    b.hidden = registryOK || !registryError;
    b.textContent = registryError + ' — showing node ' + selfID + '\'s own state (its replicas now, Redis as it last saw it); other nodes are not shown.';
  }

  function failed(e) {
    if (e instanceof Unauthorized) {
      showLogin(true);
      setStatus('token needed', 'warn');
      return true;
    }
    if (!(e instanceof NodeError)) {
      setStatus('page not updating: node unreachable (' + e.message + ')', 'bad');
      return true;
    }
    return false;
  }

  function readRegistry() {
    if (registryPending) return;
    registryPending = true;
    api('/v1/nodes').then((view) => {
      registryOK = true;
      registryError = '';
      render(view);
      renderHealth(view);
      showBanner();
      setStatus('page updating', 'ok');
    }, (e) => {
      if (failed(e)) return;
      registryOK = false;
      registryError = e.message;
      setPill('health', /unreachable/i.test(e.message) ? 'Redis unreachable' : 'registry unreadable', 'bad', e.message);
      $('problems').hidden = true; // they were the registry's
      showBanner();
      readLocal();
    }).finally(() => { registryPending = false; });
  }

  async function readLocal() {
    try {
      const view = await api('/v1/nodes?local=true');
      setStatus('page updating', 'ok');
      if (registryOK) return; // the registry answered meanwhile
      selfID = view.self;
      render(view);
      showBanner();
      if (!registryError) setPill('health', 'reading the registry…', '');
    } catch (e) {
      failed(e);
    }
  }

  function refresh() {
    readRegistry();
    if (!registryOK) readLocal();
  }

  // The keys of the selected map, from this node's replica.
  let after = '';     // the page shown starts after this key
  let next = '';      // the next page starts after this key
  async function refreshKeys() {
    const map = $('map-select').value;
    if (!map) return;
    const q = new URLSearchParams({values: 'true', limit: String(PAGE)});
    if (after) q.set('after', after);
    const prefix = $('prefix').value;
    if (prefix) q.set('prefix', prefix);
    try {
      const page = await api('/v1/maps/' + encodeURIComponent(map) + '?' + q);
      next = page.next || '';
      $('next').disabled = !next;
      $('keys-info').textContent = num(page.total) + ' keys · replica at seq ' + num(page.seq);
      $('keys').tBodies[0].replaceChildren(...page.keys.map((k) => el('tr', {},
        el('td', {className: 'mono'}, k.key),
        numCell(num(k.version)),
        el('td', {className: 'mono value'}, k.base64 ? '(base64) ' + clip(k.value) : clip(k.value)))));
    } catch (e) {
      if (!(e instanceof Unauthorized)) $('keys-info').textContent = e.message;
    }
  }
  const clip = (s) => s.length > 200 ? s.slice(0, 200) + '…' : s;

  $('first').addEventListener('click', () => { after = ''; refreshKeys(); });
  $('next').addEventListener('click', () => { if (next) { after = next; refreshKeys(); } });
  $('prefix').addEventListener('input', () => { after = ''; refreshKeys(); });
  $('map-select').addEventListener('change', selectMap);

  function selectMap() {
    after = '';
    refreshKeys();
    restartWatch();
  }

  // Live changes of the selected map. EventSource cannot send headers: the token goes in the
  // URL, and the browser resumes after a disconnect with Last-Event-ID.
  let source = null;
  function restartWatch() {
    if (source) source.close();
    source = null;
    $('changes').replaceChildren();
    const map = $('map-select').value;
    if (!map) return;
    const q = new URLSearchParams({from: 'now'});
    if (token()) q.set('token', token());
    source = new EventSource('/v1/maps/' + encodeURIComponent(map) + '/watch?' + q);
    source.onopen = () => { $('watch-state').textContent = '· streaming'; };
    source.onerror = () => { $('watch-state').textContent = '· reconnecting…'; };
    source.onmessage = (e) => {
      const w = JSON.parse(e.data);
      for (const c of w.changes) {
        addChange(el('li', {},
          el('span', {className: 'seq mono'}, '#' + w.seq),
          el('span', {className: 'op-' + c.op}, c.op), ' ',
          el('span', {className: 'mono'}, c.key),
          c.op === 'set' ? el('span', {className: 'mono'}, ' = ' + clip(c.value)) : null));
      }
    };
    source.addEventListener('reset', (e) => {
      const r = JSON.parse(e.data).reset;
      addChange(el('li', {className: 'reset'}, 'reset (' + r.reason + '): changes ' + r.from + '–' + (r.to || '?') + ' cannot be shown'));
    });
  }
  function addChange(li) {
    const list = $('changes');
    list.prepend(li);
    while (list.children.length > MAX_CHANGES) list.lastChild.remove();
  }

  refresh(); // selects the first map, which starts its keys and its changes
  setInterval(refresh, POLL_MS);
  setInterval(refreshKeys, POLL_MS);
})();
