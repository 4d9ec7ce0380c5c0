// dfmon dashboard: polls /healthz for streams, listens on the /alerts WebSocket for scores and alerts.
// Every string that comes from the server is rendered through textContent or an attribute, never as
// HTML, so a stream id, reason or URI cannot inject markup. Memory is bounded: 60 s of points per
// track, at most MAX_TRACKS tracks and MAX_ALERTS alert entries.
'use strict';

(function () {
  const WINDOW_MS = 60000;
  const HEALTH_EVERY_MS = 3000;
  const MAX_TRACKS = 48;
  const MAX_POINTS = 600; // per track: 60 s at up to 10 scored frames per second
  const MAX_ALERTS = 100;
  const WANTED_TYPES = ['score', 'alert_start', 'alert_end', 'stream_state'];
  const NAME_RE = /^[A-Za-z0-9_.-]{1,64}$/; // stream ids as the config allows them
  const SVG_NS = 'http://www.w3.org/2000/svg';

  // The feed token, when the server has one, comes from this page's own URL (?token=...).
  const token = new URLSearchParams(location.search).get('token') || '';

  const streamRows = new Map(); // stream id -> {row, cells}
  const tracks = new Map(); // "stream/track" -> {el, poly, value, points: [[ms, score]], last}
  const openAlerts = new Map(); // "stream/track" -> <li> of the alert still open
  let health = null;
  let ws = null;
  let wsRetryMs = 1000;
  let dropped = 0;
  let dirty = false;
  // Alerts raised before this page opened come from /recent once the feed is open; live events wait
  // in `early` until then, and seq numbers already shown are skipped (a reconnect replays the log).
  let backlogPending = false;
  let early = [];
  const shownAlertSeq = new Set();

  const $ = (id) => document.getElementById(id);

  function node(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = String(text);
    return e;
  }

  function num(v, digits) {
    return typeof v === 'number' && isFinite(v) ? v.toFixed(digits) : '–';
  }

  function setFeed(state, text) {
    const b = $('feed');
    b.dataset.state = state;
    b.textContent = 'feed: ' + text;
  }

  function setNote(text) {
    const n = $('tracks-note');
    n.textContent = text || '';
    n.hidden = !text;
  }

  // ---- streams -----------------------------------------------------------------------------------

  function streamRow(id) {
    let r = streamRows.get(id);
    if (r) return r;
    const row = node('tr');
    row.dataset.stream = id;
    const cells = {};
    for (const k of ['id', 'state', 'fps', 'frames', 'faces', 'tracks', 'alerts', 'age']) {
      cells[k] = node('td', k === 'id' || k === 'state' ? k : 'num ' + k);
      row.appendChild(cells[k]);
    }
    cells.id.textContent = id;
    cells.stateText = node('span');
    cells.reason = node('div', 'reason');
    cells.state.append(cells.stateText, cells.reason);
    $('streams').tBodies[0].appendChild(row);
    r = { row, cells };
    streamRows.set(id, r);
    return r;
  }

  function showState(id, state, reason, retryIn) {
    const c = streamRow(id).cells;
    const s = typeof state === 'string' ? state : 'unknown';
    c.stateText.dataset.state = s;
    c.stateText.textContent = s === 'retrying' && retryIn > 0 ? 'retrying in ' + num(retryIn, 0) + ' s' : s;
    c.reason.textContent = s === 'live' ? '' : reason || '';
  }

  function applyHealth(h) {
    health = h;
    // The model cards' measured quality: when it is poor the server sends one sentence to show by the alerts.
    const caution = $('caution');
    caution.hidden = !(typeof h.caution === 'string' && h.caution);
    caution.textContent = caution.hidden ? '' : h.caution;
    for (const s of Array.isArray(h.streams) ? h.streams : []) {
      if (typeof s.id !== 'string') continue;
      const c = streamRow(s.id).cells;
      showState(s.id, s.state, s.reason, s.retry_in_s);
      c.fps.textContent = num(s.fps, 1);
      c.frames.textContent = typeof s.frames_analyzed === 'number' ? String(s.frames_analyzed) : '–';
      c.faces.textContent = typeof s.faces_scored === 'number' ? String(s.faces_scored) : '–';
      c.tracks.textContent = typeof s.active_tracks === 'number' ? String(s.active_tracks) : '–';
      c.alerts.textContent = typeof s.open_alerts === 'number' ? String(s.open_alerts) : '–';
      c.age.textContent = typeof s.last_frame_age_s === 'number' && s.last_frame_age_s >= 0 ? num(s.last_frame_age_s, 1) + ' s' : '–';
    }
    const parts = ['status ' + (typeof h.status === 'string' ? h.status : '?')];
    if (typeof h.uptime_s === 'number') parts.push('up ' + num(h.uptime_s, 0) + ' s');
    if (dropped) parts.push(dropped + ' events dropped (this page fell behind)');
    $('status').textContent = parts.join(' · ');
  }

  async function pollHealth() {
    try {
      const r = await fetch('healthz', { cache: 'no-store' });
      if (!r.ok) throw new Error('HTTP ' + r.status);
      applyHealth(await r.json());
      if (!ws) connect();
    } catch (err) {
      $('status').textContent = 'healthz: ' + err.message;
    } finally {
      setTimeout(pollHealth, HEALTH_EVERY_MS);
    }
  }

  // ---- live feed ---------------------------------------------------------------------------------

  // The server refuses types its websocket sink does not carry; /healthz says which those are.
  function feedTypes() {
    const feed = health && health.feed;
    if (!feed || !Array.isArray(feed.types)) return WANTED_TYPES;
    return WANTED_TYPES.filter((t) => feed.types.includes(t));
  }

  function connect() {
    const types = feedTypes();
    const feed = (health && health.feed) || {};
    if (types.length === 0) {
      setFeed('failed', 'off');
      setNote('No live feed: the config has no websocket sink.');
      ws = 'off';
      return;
    }
    if (feed.auth && !token) {
      setFeed('failed', 'needs token');
      setNote('This server requires a token: open the page as /?token=YOUR_TOKEN.');
      ws = 'off';
      return;
    }
    setNote(types.includes('score') ? '' : 'No scores on the feed: add `score` to the websocket sink\'s types for sparklines.');
    const url = new URL('alerts', location.href);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    url.hash = '';
    url.search = '?types=' + types.join(',') + (token ? '&token=' + encodeURIComponent(token) : '');
    setFeed('connecting', 'connecting');
    const sock = new WebSocket(url.href);
    ws = sock;
    backlogPending = true;
    early = [];
    sock.onopen = () => {
      wsRetryMs = 1000;
      setFeed('live', 'live');
      loadBacklog();
    };
    sock.onmessage = (m) => {
      let ev;
      try {
        ev = JSON.parse(m.data);
      } catch (err) {
        return;
      }
      if (!ev || typeof ev !== 'object') return;
      if (backlogPending && early.length < 1000) early.push(ev);
      else if (!backlogPending) onEvent(ev);
    };
    sock.onclose = (e) => {
      if (ws !== sock) return;
      setFeed('closed', 'closed (' + e.code + '), retrying in ' + Math.round(wsRetryMs / 1000) + ' s');
      setTimeout(() => {
        ws = null;
        connect();
      }, wsRetryMs);
      wsRetryMs = Math.min(wsRetryMs * 2, 30000);
    };
  }

  function loadBacklog() {
    const done = () => {
      backlogPending = false;
      const queued = early;
      early = [];
      queued.forEach(onEvent);
    };
    fetch('recent' + (token ? '/' + encodeURIComponent(token) : ''), { cache: 'no-store' })
      .then((r) => (r.ok ? r.json() : null))
      .then((j) => {
        if (j && Array.isArray(j.events)) j.events.forEach((ev) => ev && typeof ev === 'object' && onEvent(ev));
      })
      .catch(() => {})
      .finally(done);
  }

  function onEvent(ev) {
    const stream = typeof ev.stream === 'string' ? ev.stream : '';
    switch (ev.type) {
      case 'score':
        addScore(stream, ev.track, ev.score);
        break;
      case 'alert_start':
      case 'alert_end':
        if (typeof ev.seq === 'number') {
          if (shownAlertSeq.has(ev.seq)) break;
          shownAlertSeq.add(ev.seq);
          if (shownAlertSeq.size > 4 * MAX_ALERTS) shownAlertSeq.delete(shownAlertSeq.values().next().value);
        }
        addAlert(ev, stream);
        break;
      case 'stream_state':
        if (stream) showState(stream, ev.state, ev.reason, ev.retry_in_s);
        break;
      case 'dropped':
        dropped += typeof ev.count === 'number' ? ev.count : 1;
        break;
    }
  }

  // ---- tracks and sparklines ---------------------------------------------------------------------

  function trackKey(stream, track) {
    return stream + '/' + track;
  }

  function trackRow(stream, track) {
    const key = trackKey(stream, track);
    let t = tracks.get(key);
    if (t) return t;
    if (tracks.size >= MAX_TRACKS) {
      // Make room by dropping the track that has been quiet the longest.
      let oldest = null;
      for (const [k, v] of tracks) if (!oldest || v.last < oldest[1].last) oldest = [k, v];
      oldest[1].el.remove();
      tracks.delete(oldest[0]);
    }
    const el = node('div', 'track');
    el.dataset.stream = stream;
    el.dataset.track = String(track);
    const label = node('span', 'label', stream + ' · track ' + track);
    label.title = label.textContent;
    const svg = document.createElementNS(SVG_NS, 'svg');
    svg.setAttribute('class', 'spark');
    svg.setAttribute('viewBox', '0 0 100 100');
    svg.setAttribute('preserveAspectRatio', 'none');
    const on = health && health.scoring && typeof health.scoring.alert_on === 'number' ? health.scoring.alert_on : null;
    if (on !== null) {
      const line = document.createElementNS(SVG_NS, 'line');
      line.setAttribute('class', 'on');
      line.setAttribute('x1', '0');
      line.setAttribute('x2', '100');
      line.setAttribute('y1', String((1 - on) * 100));
      line.setAttribute('y2', String((1 - on) * 100));
      svg.appendChild(line);
    }
    const poly = document.createElementNS(SVG_NS, 'polyline');
    svg.appendChild(poly);
    const value = node('span', 'value', '–');
    el.append(label, svg, value);
    $('tracks').appendChild(el);
    t = { el, poly, value, points: [], last: Date.now() };
    tracks.set(key, t);
    return t;
  }

  function addScore(stream, track, score) {
    if (!Number.isInteger(track) || typeof score !== 'number' || !isFinite(score)) return;
    const t = trackRow(stream, track);
    const now = Date.now();
    t.points.push([now, Math.min(1, Math.max(0, score))]);
    if (t.points.length > MAX_POINTS) t.points.shift();
    t.last = now;
    t.value.textContent = num(score, 2);
    changed();
  }

  function render() {
    const now = Date.now();
    const from = now - WINDOW_MS;
    for (const [key, t] of tracks) {
      while (t.points.length && t.points[0][0] < from) t.points.shift();
      if (!t.points.length) {
        t.el.remove();
        tracks.delete(key);
        continue;
      }
      const pts = t.points.map(([ms, s]) => (((ms - from) / WINDOW_MS) * 100).toFixed(2) + ',' + ((1 - s) * 100).toFixed(2));
      // A single point still shows as a short tick.
      if (pts.length === 1) pts.unshift((((t.points[0][0] - from) / WINDOW_MS) * 100 - 0.5).toFixed(2) + ',' + pts[0].split(',')[1]);
      t.poly.setAttribute('points', pts.join(' '));
      t.el.classList.toggle('alerting', openAlerts.has(key));
    }
    dirty = false;
  }

  // ---- alerts ------------------------------------------------------------------------------------

  function thumbUrl(stream, track) {
    if (!NAME_RE.test(stream) || stream === '.' || stream === '..' || !Number.isInteger(track) || track < 0) return null;
    return 'thumb/' + (token ? encodeURIComponent(token) + '/' : '') + stream + '/' + track + '.jpg';
  }

  function thumbnail(stream, track) {
    const url = thumbUrl(stream, track);
    if (!url) return node('div', 'noimg', 'no image');
    const img = node('img');
    img.alt = 'face of ' + stream + ' track ' + track;
    img.onerror = () => img.replaceWith(node('div', 'noimg', 'image gone'));
    img.src = url;
    return img;
  }

  function describeEnd(ev) {
    return 'ended after ' + num(ev.duration_s, 1) + ' s, peak ' + num(ev.peak, 2);
  }

  function addAlert(ev, stream) {
    const key = trackKey(stream, ev.track);
    if (ev.type === 'alert_end' && openAlerts.has(key)) {
      const li = openAlerts.get(key);
      openAlerts.delete(key);
      li.classList.remove('open');
      li.dataset.type = 'alert_end';
      li.querySelector('.end').textContent = describeEnd(ev);
      changed();
      return;
    }
    const li = node('li', ev.type === 'alert_start' ? 'alert open' : 'alert');
    li.dataset.stream = stream;
    li.dataset.track = String(ev.track);
    li.dataset.type = ev.type;
    const text = node('div');
    const when = typeof ev.time === 'string' && !isNaN(Date.parse(ev.time)) ? new Date(ev.time).toLocaleTimeString() : '';
    text.append(
      node('div', 'what', stream + ' · track ' + ev.track),
      node('div', '', 'score ' + num(ev.score, 2) + (ev.models && typeof ev.models === 'object'
        ? ' (' + Object.keys(ev.models).map((m) => m + ' ' + num(ev.models[m], 2)).join(', ') + ')' : '')),
      node('div', 'muted', when + (typeof ev.pts_s === 'number' ? ' · at ' + num(ev.pts_s, 1) + ' s in the stream' : '')),
      node('div', 'end', ev.type === 'alert_end' ? describeEnd(ev) : 'open'));
    li.append(thumbnail(stream, ev.track), text);
    const list = $('alerts');
    list.insertBefore(li, list.firstChild);
    if (ev.type === 'alert_start') openAlerts.set(key, li);
    while (list.children.length > MAX_ALERTS) {
      const last = list.lastElementChild;
      openAlerts.forEach((v, k) => {
        if (v === last) openAlerts.delete(k);
      });
      last.remove();
    }
    changed();
  }

  // Redraw once per animation frame when data arrived, and every second so the 60 s window moves
  // (the timer also keeps drawing where animation frames are paused, e.g. in a background tab).
  function changed() {
    if (dirty) return;
    dirty = true;
    requestAnimationFrame(() => {
      if (dirty) render();
    });
  }
  setInterval(render, 1000);
  pollHealth();
})();
