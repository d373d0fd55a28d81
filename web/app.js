// mailprobe web page: one address (GET /v1/check) and lists (POST /v1/jobs, then poll
// GET /v1/jobs/ID). No library. Server data only ever goes into the page through
// textContent and attributes, never as HTML. The optional access token is kept in
// localStorage and sent as "Authorization: Bearer"; a 401 asks for it and retries.
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  const TOKEN_KEY = 'mailprobe.token';
  const VERDICTS = ['deliverable', 'undeliverable', 'risky', 'unknown'];
  const WORD = { deliverable: 'Deliverable', undeliverable: 'Undeliverable', risky: 'Risky',
    unknown: 'Unknown', error: 'Unreadable row' };
  const SYMBOL = { deliverable: '\u2713', undeliverable: '\u2717', risky: '!', unknown: '?' };
  const REASON = {
    accepted: 'The mail server accepted this mailbox.',
    allow_listed: 'On your allow list.',
    invalid_syntax: 'This is not a valid address.',
    no_such_domain: 'The domain does not exist.',
    no_mail_server: 'The domain takes no mail.',
    unroutable_mx: 'The domain\u2019s mail servers cannot be reached from the Internet.',
    mailbox_absent: 'The mailbox does not exist.',
    mailbox_disabled: 'The mailbox is disabled.',
    recipient_refused: 'The server refused this address while it accepted postmaster@.',
    smtputf8_unsupported: 'The mail server cannot receive mail for a UTF-8 address.',
    domain_not_served: 'The domain\u2019s mail server does not take mail for it.',
    deny_listed: 'On your deny list.',
    accept_all: 'The server accepts any address, so its yes proves nothing.',
    anti_enumeration: 'The server will take mail but will not say whether the mailbox exists.',
    mailbox_full: 'The mailbox is full.',
    disposable: 'A disposable address.',
    role_account: 'A team address, not a person.',
    greylisted: 'Greylisted: the server wants us to come back later.',
    temporary_failure: 'A temporary refusal: check again later.',
    policy_blocked: 'The server refused us, not the mailbox.',
    sender_rejected: 'The server refused our sender address.',
    rate_limited: 'The server asked us to slow down.',
    too_many_recipients: 'The server refused more recipients in one go: check again.',
    connect_failed: 'No mail server accepted a connection.',
    timeout: 'The mail server did not answer in time.',
    tls_failed: 'The TLS handshake failed.',
    protocol_error: 'The server\u2019s answers were not valid SMTP.',
    dns_failure: 'DNS could not say where mail for the domain goes.',
    not_checked: 'The mailbox was not checked over SMTP.'
  };
  const query = new URLSearchParams(location.search);
  // How long the server may wait before answering "pending" (?wait=S overrides).
  const WAIT = clampInt(query.get('wait'), 1, 300, 25);

  function clampInt(v, lo, hi, dflt) {
    const n = Math.round(Number(v));
    return v === null || v === undefined || v === '' || !isFinite(n) ? dflt : Math.min(hi, Math.max(lo, n));
  }

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) {
      if (k === 'class') e.className = attrs[k];
      else e.setAttribute(k, attrs[k]);
    }
    for (const c of kids) e.append(c === null || c === undefined ? '' : c);
    return e;
  }

  function setStatus(node, text, kind) {
    node.textContent = text;
    node.className = 'status' + (kind ? ' ' + kind : '');
  }

  function fmtDuration(s) {
    s = Math.max(0, Math.round(s));
    if (s < 60) return s + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min ' + (s % 60) + ' s';
    return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
  }

  function yesNo(v, unknownWord) {
    return v === true ? 'yes' : v === false ? 'no' : (unknownWord || 'not known');
  }

  // ------------------------------------------------------------------ API + token
  class ApiError extends Error {
    constructor(status, code, message, retryAfter) {
      super(message || code);
      this.status = status;
      this.code = code;
      this.retryAfter = retryAfter;
    }
  }

  function getToken() {
    try { return localStorage.getItem(TOKEN_KEY) || ''; } catch (e) { return ''; }
  }

  async function api(method, path, opts) {
    opts = opts || {};
    const headers = { Accept: opts.raw ? '*/*' : 'application/json' };
    const tok = getToken();
    if (tok) headers.Authorization = 'Bearer ' + tok;
    if (opts.contentType) headers['Content-Type'] = opts.contentType;
    let res;
    try {
      res = await fetch(path, { method, headers, body: opts.body, signal: opts.signal,
        cache: 'no-store', credentials: 'same-origin' });
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      throw new ApiError(0, 'network', 'could not reach the mailprobe server');
    }
    const ra = Number(res.headers.get('Retry-After'));
    if (res.ok) {
      if (opts.raw) return res;
      if (res.status === 204) return {};
      try { return await res.json(); } catch (e) {
        throw new ApiError(res.status, 'bad_json', 'the server sent something that is not JSON');
      }
    }
    let body = null;
    try { body = await res.json(); } catch (e) { /* not JSON */ }
    throw new ApiError(res.status, (body && body.error) || 'http_' + res.status,
      (body && body.message) || res.statusText || 'HTTP ' + res.status,
      isFinite(ra) && ra > 0 ? ra : 0);
  }

  let afterToken = null;  // what to retry once a token is saved

  function askToken(retry) {
    afterToken = retry;
    const sent = getToken() !== '';
    $('auth-msg').textContent = sent
      ? 'The server did not accept the saved access token. Enter a valid one.'
      : 'This server needs an access token. Enter it to continue.';
    $('auth-msg').className = sent ? 'why error' : 'why';
    $('auth').hidden = false;
    $('token').focus();
  }

  function tokenUi() {
    $('token-toggle').hidden = getToken() === '';
  }

  $('auth-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const v = $('token').value.trim();
    if (!v) { $('token').focus(); return; }
    try { localStorage.setItem(TOKEN_KEY, v); } catch (e) { /* private mode: session only */ }
    $('token').value = '';
    $('auth').hidden = true;
    tokenUi();
    const retry = afterToken;
    afterToken = null;
    if (retry) retry();
  });
  $('token-forget').addEventListener('click', () => {
    try { localStorage.removeItem(TOKEN_KEY); } catch (e) { /* nothing kept */ }
    $('token').value = '';
    $('auth-msg').textContent = 'Token forgotten.';
    $('auth-msg').className = 'why';
    tokenUi();
  });
  $('token-toggle').addEventListener('click', () => {
    $('auth').hidden = !$('auth').hidden;
    if (!$('auth').hidden) {
      $('auth-msg').textContent = 'A token is saved in this browser. Enter another to replace it.';
      $('auth-msg').className = 'why';
      $('token').focus();
    }
  });

  // ------------------------------------------------------------------ one address
  const check = { gen: 0, timer: 0, abort: null };

  function cancelCheck() {
    check.gen++;
    clearTimeout(check.timer);
    if (check.abort) check.abort.abort();
    check.abort = null;
  }

  function startCheck(addr) {
    cancelCheck();
    $('result').hidden = true;
    if (!addr) {
      setStatus($('check-status'), 'Enter an email address.', 'error');
      $('email').focus();
      return;
    }
    setStatus($('check-status'), 'Checking ' + addr + '\u2026', 'busy');
    runCheck(addr, check.gen);
  }

  async function runCheck(addr, gen) {
    const status = $('check-status');
    check.abort = new AbortController();
    const q = new URLSearchParams({ email: addr, transcript: '1', timeout: String(WAIT) });
    try {
      const r = await api('GET', 'v1/check?' + q.toString(), { signal: check.abort.signal });
      if (gen !== check.gen) return;
      if (r.pending) {
        const s = clampInt(r.retry_after, 1, 120, 2);
        setStatus(status, 'Still checking ' + addr + '\u2026 the mail server has not given its ' +
          'final answer yet; asking again in ' + s + ' s.', 'busy');
        check.timer = setTimeout(() => runCheck(addr, gen), s * 1000);
        return;
      }
      showResult(r);
      // Spoken by screen readers; on screen the result itself says it.
      setStatus(status, (r.normalized || r.email || addr) + ': ' + (WORD[r.verdict] || r.verdict) +
        ' (' + r.reason + ').', 'quiet');
    } catch (e) {
      if (e.name === 'AbortError' || gen !== check.gen) return;
      if (e.status === 401) {
        setStatus(status, 'An access token is needed to check addresses.', 'error');
        askToken(() => startCheck(addr));
      } else if (e.status === 429) {
        const s = e.retryAfter || 5;
        setStatus(status, 'Too many requests; trying again in ' + s + ' s.', 'busy');
        check.timer = setTimeout(() => runCheck(addr, gen), s * 1000);
      } else {
        setStatus(status, 'Could not check ' + addr + ': ' + e.message + '.', 'error');
      }
    }
  }

  function showResult(r) {
    const v = VERDICTS.includes(r.verdict) ? r.verdict : 'unknown';
    const badge = $('r-badge');
    badge.className = 'badge v-' + v;
    badge.dataset.verdict = r.verdict;
    badge.replaceChildren(el('span', { 'aria-hidden': 'true' }, SYMBOL[v] + ' '),
      WORD[v] || r.verdict);
    $('r-email').textContent = r.normalized || r.email || '';
    $('r-reason-label').textContent = REASON[r.reason] || '';
    $('r-reason').textContent = r.reason || '';
    $('r-reason-text').textContent = r.reason_text || '';

    const sg = $('r-suggest');
    sg.hidden = !r.suggestion;
    $('r-suggest-btn').textContent = r.suggestion || '';

    $('r-score').textContent = (r.score === null || r.score === undefined ? '?' : r.score) + ' / 100';
    $('r-meter').value = Number(r.score) || 0;
    $('r-meter').textContent = r.score + ' of 100';
    const rows = (r.score_factors || []).map((f, i) => {
      const p = Number(f.points);
      const pts = i === 0 ? String(p) : (p > 0 ? '+' : p < 0 ? '\u2212' : '') + Math.abs(p);
      return el('tr', null, el('td', null, f.factor), el('td', null, pts));
    });
    rows.push(el('tr', null, el('th', { scope: 'row' }, 'score'), el('td', null, String(r.score))));
    $('r-factors').replaceChildren(...rows);

    const fl = r.flags || {};
    const flag = (on, text) => el('li', { class: on ? 'on' : '' }, text + ': ' + yesNo(on));
    const flags = [
      flag(fl.disposable, 'Disposable'),
      flag(fl.free, 'Free provider'),
      flag(fl.role, 'Role account'),
      flag(fl.gibberish, 'Gibberish')
    ];
    if (r.list_match) flags.push(el('li', { class: 'on' }, 'Your list: ' + describe(r.list_match)));
    $('r-flags').replaceChildren(...flags);

    const d = r.domain || {};
    const s = r.smtp || {};
    const kv = [];
    const add = (k, v) => { kv.push(el('dt', null, k), el('dd', null, v)); };
    add('MX host', s.mx_host ? s.mx_host + (s.mx_ip ? ' [' + s.mx_ip + ']' : '') : '\u2014');
    if (d.null_mx) add('MX records', 'null MX: the domain takes no mail');
    else if (d.mx && d.mx.length) {
      add('MX records', d.mx.map((m) => m.pref + ' ' + m.host +
        (m.ips && m.ips.length ? ' (' + m.ips.join(', ') + ')' : '')).join('; ') +
        (d.implicit_mx ? ' (implicit)' : ''));
    }
    add('Provider', d.provider || '\u2014');
    add('Security gateway', yesNo(d.gateway));
    add('Catch-all', s.catch_all === true ? 'yes: accepts any address'
      : s.catch_all === false ? 'no' : 'not known');
    const ca = r.catch_all_assessment;
    if (ca) {
      add('Catch-all assessment', ca.assessment.replace('_', ' ') + ' (probability ' +
        Math.round(ca.probability * 100) + ' %)' + (ca.evidence || []).map((e) =>
        '; ' + e.factor + ' ' + (e.weight > 0 ? '+' : '') + e.weight +
        (e.detail ? ' (' + e.detail + ')' : '')).join(''));
    }
    if (s.code !== null && s.code !== undefined) {
      add('SMTP reply', [s.code, s.enhanced, s.message].filter((x) => x).join(' ') +
        (s.stage ? ' (at ' + s.stage + ')' : ''));
    }
    if (s.probe && s.probe.code) {
      add('Probe reply', [s.probe.code, s.probe.enhanced, s.probe.message].filter((x) => x).join(' ') +
        (s.probe.cached ? ' (cached)' : ''));
    }
    add('TLS', s.tls ? (s.tls_verified ? 'yes, certificate verified' : 'yes') : 'no');
    if (s.mx_geo) add('Location', describe(s.mx_geo));
    if (d.exists !== null && d.exists !== undefined) add('Domain exists', yesNo(d.exists));
    if (typeof r.duration_ms === 'number') {
      add('Time', (r.duration_ms / 1000).toFixed(2) + ' s' + (r.cached ? ' (a recent check, kept by the server)' : ''));
    }
    $('r-server').replaceChildren(...kv);

    const tr = Array.isArray(r.transcript) ? r.transcript : [];
    $('r-transcript-n').textContent = String(tr.length);
    const pre = $('r-transcript');
    if (!tr.length) pre.replaceChildren('No SMTP conversation.');
    else {
      pre.replaceChildren(...tr.map((t) => el('span', { class: t.dir === '>' ? 'out' : 'in' },
        (t.ip ? t.ip + ' ' : '') + (t.dir || ' ') + ' ' + (t.line || '') + '\n')));
    }
    $('result').hidden = false;
  }

  // Compact text for objects whose shape is not ours to know (list_match, mx_geo).
  function describe(x) {
    if (x === null || x === undefined) return '';
    if (typeof x !== 'object') return String(x);
    const parts = [];
    for (const k in x) {
      const v = x[k];
      if (v === null || v === undefined || v === '') continue;
      parts.push(k + ' ' + (typeof v === 'object' ? describe(v) : String(v)));
    }
    return parts.join(', ');
  }

  $('check-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    startCheck($('email').value.trim());
  });
  $('r-suggest-btn').addEventListener('click', () => {
    const a = $('r-suggest-btn').textContent;
    $('email').value = a;
    startCheck(a);
  });

  // ------------------------------------------------------------------ lists
  const job = { id: null, name: null, gen: 0, timer: 0, last: null, announced: -1 };
  const STATE = { queued: 'waiting to start', running: 'checking', done: 'done',
    failed: 'failed', interrupted: 'interrupted' };

  function stopJob() {
    job.gen++;
    clearTimeout(job.timer);
  }

  async function upload(file) {
    const status = $('job-status');
    if (!file) return;
    if (file.size === 0) {
      setStatus(status, file.name + ' is empty.', 'error');
      return;
    }
    stopJob();
    setStatus(status, 'Uploading ' + file.name + '\u2026', 'busy');
    const col = $('column').value.trim();
    try {
      const j = await api('POST', 'v1/jobs' + (col ? '?column=' + encodeURIComponent(col) : ''),
        { body: file, contentType: /\.(ndjson|jsonl)$/i.test(file.name) ? 'application/x-ndjson' : 'text/csv' });
      startJob(j.id, file.name);
    } catch (e) {
      if (e.status === 401) {
        setStatus(status, 'An access token is needed to check lists.', 'error');
        askToken(() => upload(file));
      } else if (e.status === 429) {
        const s = e.retryAfter || 5;
        setStatus(status, 'Too many requests; uploading again in ' + s + ' s.', 'busy');
        job.timer = setTimeout(() => upload(file), s * 1000);
      } else if (e.status === 413) {
        setStatus(status, file.name + ' is larger than this server accepts (its --max-body).', 'error');
      } else {
        setStatus(status, 'Could not start the job: ' + e.message + '.', 'error');
      }
    }
  }

  function startJob(id, name) {
    stopJob();
    job.id = String(id);
    job.name = name;
    job.last = null;
    job.announced = -1;
    history.replaceState(null, '', '#job=' + encodeURIComponent(job.id));
    $('job').hidden = false;
    $('job-dl').hidden = true;
    $('job-name').textContent = (name ? name + ' \u2014 ' : '') + 'job ' + job.id;
    setStatus($('job-status'), 'Job ' + job.id + ' started.', 'busy');
    poll(job.gen);
  }

  async function poll(gen) {
    const status = $('job-status');
    try {
      const j = await api('GET', 'v1/jobs/' + encodeURIComponent(job.id));
      if (gen !== job.gen) return;
      renderJob(j);
      if (j.state === 'queued' || j.state === 'running') job.timer = setTimeout(() => poll(gen), 1000);
    } catch (e) {
      if (gen !== job.gen) return;
      if (e.status === 401) {
        setStatus(status, 'An access token is needed to follow this job.', 'error');
        askToken(() => poll(gen));
      } else if (e.status === 429) {
        job.timer = setTimeout(() => poll(gen), (e.retryAfter || 2) * 1000);
      } else if (e.status === 404) {
        setStatus(status, 'Job ' + job.id + ' does not exist (any more).', 'error');
        forgetJob();
      } else if (e.status === 0) {
        setStatus(status, 'Lost contact with the server; trying again\u2026', 'error');
        job.timer = setTimeout(() => poll(gen), 3000);
      } else {
        setStatus(status, 'Could not read the job: ' + e.message + '.', 'error');
      }
    }
  }

  function renderJob(j) {
    const counts = j.counts || {};
    const total = typeof j.rows_total === 'number' ? j.rows_total : null;
    const done = Number(j.rows_done) || 0;
    const active = j.state === 'queued' || j.state === 'running';
    $('job-state').textContent = '(' + (STATE[j.state] || j.state) + ')';
    const bar = $('job-progress');
    if (j.state === 'done') bar.value = 1;
    else if (total === null && active) bar.removeAttribute('value');
    else bar.value = Math.min(1, Math.max(0, Number(j.progress) || 0));
    $('job-rows').textContent = total !== null
      ? done + ' of ' + total + ' rows checked' : done + ' rows checked';
    $('job-eta').textContent = j.state === 'running' && typeof j.eta_seconds === 'number'
      ? '\u2014 about ' + fmtDuration(j.eta_seconds) + ' left' : '';
    const msg = $('job-msg');
    msg.hidden = !j.message;
    msg.textContent = j.message || '';
    msg.className = 'why' + (j.state === 'failed' ? ' error' : '');
    drawChart(counts);
    const reasons = Object.entries(j.reasons || {}).filter((e) => e[1] > 0)
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    $('job-reasons').replaceChildren(...reasons.map((e) => el('li', null, el('code', null, e[0]),
      ': ' + e[1])));
    $('job-reasons-box').hidden = reasons.length === 0;
    if (j.state === 'done') renderLinks(counts);
    else $('job-dl').hidden = true;
    announce(j, total, done, counts);
    job.last = j;
  }

  // The live region speaks on a change of state and at each quarter, not every second.
  function announce(j, total, done, counts) {
    const status = $('job-status');
    const prev = job.last;
    const q = total ? Math.floor((4 * done) / total) : -1;
    if (prev && prev.state === j.state && q === job.announced) return;
    job.announced = q;
    if (j.state === 'done') {
      const parts = VERDICTS.map((v) => (counts[v] || 0) + ' ' + v);
      if (counts.error) parts.push(counts.error + ' unreadable');
      setStatus(status, 'Done: ' + done + ' rows \u2014 ' + parts.join(', ') + '. Results are ready to download.');
    } else if (j.state === 'failed' || j.state === 'interrupted') {
      setStatus(status, 'The job ' + STATE[j.state] + (j.message ? ': ' + j.message : '') + '.', 'error');
    } else {
      setStatus(status, (STATE[j.state] || j.state) + ': ' + $('job-rows').textContent + '.', 'busy');
    }
  }

  const SVGNS = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVGNS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function drawChart(counts) {
    const cats = VERDICTS.concat(['error']);
    const W = 420, ROW = 28, LABEL = 130, NUM = 56;
    const max = Math.max(1, ...cats.map((c) => Number(counts[c]) || 0));
    const chart = $('job-chart');
    chart.setAttribute('viewBox', '0 0 ' + W + ' ' + (ROW * cats.length));
    const kids = [];
    cats.forEach((c, i) => {
      const n = Number(counts[c]) || 0;
      const y = i * ROW;
      const full = W - LABEL - NUM;
      const g = svg('g', { 'data-verdict': c, class: 'bar' });
      g.append(svg('text', { x: 0, y: y + 19, class: 'bar-label' }, c === 'error' ? 'unreadable' : c),
        svg('rect', { x: LABEL, y: y + 5, width: full, height: 18, rx: 3, class: 'bar-track' }),
        svg('rect', { x: LABEL, y: y + 5, width: Math.round((full * n) / max), height: 18, rx: 3,
          class: 'bar-' + c }),
        svg('text', { x: LABEL + Math.round((full * n) / max) + 6, y: y + 19, class: 'bar-count' },
          String(n)));
      kids.push(g);
    });
    chart.replaceChildren(...kids);
    chart.setAttribute('aria-label', 'Verdicts: ' + cats.map((c) =>
      (Number(counts[c]) || 0) + ' ' + (c === 'error' ? 'unreadable' : c)).join(', '));
  }

  function renderLinks(counts) {
    const base = 'v1/jobs/' + encodeURIComponent(job.id) + '/results?format=';
    const stem = 'mailprobe-' + job.id.replace(/[^A-Za-z0-9_.-]/g, '_');
    const items = [
      ['All rows (CSV)', base + 'csv', stem + '.csv', 'all-csv'],
      ['All rows (NDJSON)', base + 'ndjson', stem + '.ndjson', 'all-ndjson']
    ].concat(VERDICTS.map((v) => {
      // the server puts unreadable rows in the "unknown" file
      const n = (counts[v] || 0) + (v === 'unknown' ? counts.error || 0 : 0);
      const what = v === 'unknown' && counts.error ? ' (with the unreadable ones)' : '';
      return [WORD[v] + ' only, ' + n + ' rows' + what + ' (CSV)', base + 'csv&verdict=' + v,
        stem + '-' + v + '.csv', v + '-csv'];
    }));
    $('job-links').replaceChildren(...items.map((it) => el('li', null,
      el('a', { href: it[1], download: it[2], 'data-kind': it[3] }, it[0]))));
    $('job-dl').hidden = false;
  }

  // With a token a plain link cannot send the header: fetch it, then save the blob.
  $('job-links').addEventListener('click', async (ev) => {
    const a = ev.target.closest('a');
    if (!a || !getToken()) return;
    ev.preventDefault();
    const status = $('job-status');
    try {
      const res = await api('GET', a.getAttribute('href'), { raw: true });
      const url = URL.createObjectURL(await res.blob());
      const tmp = el('a', { href: url, download: a.getAttribute('download') });
      document.body.append(tmp);
      tmp.click();
      tmp.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
    } catch (e) {
      if (e.status === 401) askToken(() => a.click());
      else setStatus(status, 'Could not download: ' + e.message + '.', 'error');
    }
  });

  function forgetJob() {
    stopJob();
    job.id = null;
    $('job').hidden = true;
    history.replaceState(null, '', location.pathname + location.search);
  }

  $('job-delete').addEventListener('click', async () => {
    const id = job.id;
    if (!id) return;
    stopJob();
    try {
      await api('DELETE', 'v1/jobs/' + encodeURIComponent(id));
      forgetJob();
      setStatus($('job-status'), 'Job ' + id + ' deleted.');
    } catch (e) {
      if (e.status === 404) { forgetJob(); return; }
      if (e.status === 401) { askToken(() => $('job-delete').click()); return; }
      setStatus($('job-status'), 'Could not delete the job: ' + e.message + '.', 'error');
    }
  });

  const drop = $('drop');
  const hasFiles = (ev) => ev.dataTransfer && Array.from(ev.dataTransfer.types || []).includes('Files');
  ['dragenter', 'dragover'].forEach((t) => drop.addEventListener(t, (ev) => {
    if (!hasFiles(ev)) return;
    ev.preventDefault();
    ev.dataTransfer.dropEffect = 'copy';
    drop.classList.add('over');
  }));
  drop.addEventListener('dragleave', (ev) => {
    if (!drop.contains(ev.relatedTarget)) drop.classList.remove('over');
  });
  drop.addEventListener('drop', (ev) => {
    ev.preventDefault();
    drop.classList.remove('over');
    const f = ev.dataTransfer && ev.dataTransfer.files && ev.dataTransfer.files[0];
    if (f) upload(f);
  });
  // A file dropped beside the zone must not replace the page.
  window.addEventListener('dragover', (ev) => { if (hasFiles(ev)) ev.preventDefault(); });
  window.addEventListener('drop', (ev) => { if (hasFiles(ev)) ev.preventDefault(); });
  $('file').addEventListener('change', () => {
    const f = $('file').files[0];
    upload(f);
    $('file').value = '';  // choosing the same file again starts a new job
  });
  $('bulk-form').addEventListener('submit', (ev) => ev.preventDefault());

  // ------------------------------------------------------------------ this server
  // The identity checks the server ran at start (GET /v1/doctor): shown when there is a
  // report; a missing report (--offline) or token leaves the card hidden.
  async function loadDoctor() {
    let rep;
    try { rep = await api('GET', '/v1/doctor'); } catch (e) { return; }
    const r = rep && rep.reports && rep.reports[0];
    if (!r) return;
    const words = { ok: 'ok', warn: 'warning', fail: 'problem' };
    const list = $('doctor-checks');
    list.textContent = '';
    for (const c of r.checks || []) {
      if (c.status === 'skip') continue;
      const li = document.createElement('li');
      li.dataset.id = c.id;
      li.dataset.status = c.status;
      const b = document.createElement('span');
      b.className = 'badge d-' + c.status;
      b.textContent = words[c.status] || c.status;
      const t = document.createElement('strong');
      t.textContent = c.title + ': ';
      li.append(b, t, document.createTextNode(c.message || ''));
      if (c.fix) {
        const f = document.createElement('span');
        f.className = 'fix';
        f.textContent = 'What to do: ' + c.fix;
        li.append(f);
      }
      list.append(li);
    }
    $('doctor-status').textContent = rep.status === 'ok'
      ? 'This server\'s identity (HELO ' + (r.helo || '?') + ') passes the quick checks.'
      : 'Servers may refuse this server whatever the mailbox: see the ' +
        (rep.status === 'fail' ? 'problems' : 'warnings') + ' below.';
    $('doctor').hidden = false;
  }

  // ------------------------------------------------------------------ start
  tokenUi();
  loadDoctor();
  const m = /^#job=(.+)$/.exec(location.hash);
  if (m) startJob(decodeURIComponent(m[1]), null);
  const pre = query.get('email');
  if (pre) { $('email').value = pre; startCheck(pre.trim()); }
})();
