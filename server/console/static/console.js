// goatdb console: one page, hash routes, the server's JSON API only.
// Every element is built with createElement and textContent, never from
// markup strings, so nothing a repository holds is ever parsed as markup.

const main = document.getElementById('main');
const statusLine = document.getElementById('status');
let session = null; // the answer of GET /v1/auth/session
let leave = null; // stops the current view's background work
let afterLogin = '#/repos';

// ---- DOM helpers ----------------------------------------------------------

function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v == null) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else if (k === 'value') el.value = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const kid of kids.flat()) {
    if (kid == null || kid === false) continue;
    el.append(kid instanceof Node ? kid : String(kid));
  }
  return el;
}

let uid = 0;
function field(labelText, input, cls) {
  input.id ||= 'f' + ++uid;
  return h('label', { for: input.id, class: cls }, labelText, input);
}

function say(msg) { statusLine.textContent = msg; }

function errorBox(id) { return h('p', { id, class: 'error', role: 'alert' }); }

function show(box, err) {
  box.textContent = err ? describe(err) : '';
}

function describe(err) {
  if (err instanceof ApiError) {
    let s = `${err.status} ${err.code || ''}`.trim() + ': ' + (err.reason || 'request failed');
    if (err.field) s += ` (field ${err.field})`;
    return s;
  }
  return String(err && err.message || err);
}

function time(iso) {
  return h('time', { datetime: iso, text: iso ? iso.replace('T', ' ').replace(/\.\d+Z$|Z$/, ' UTC') : '' });
}

function show_value(v) {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function title(text) {
  document.title = text + ' · goatdb console';
  return h('h1', { tabindex: '-1', text });
}

// ---- API ------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    super(body.reason || body.error || 'HTTP ' + status);
    this.status = status;
    this.code = body.error;
    this.reason = body.reason;
    this.field = body.field;
  }
}

async function api(method, url, opts = {}) {
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json', ...opts.headers } };
  if (opts.body !== undefined) {
    init.body = JSON.stringify(opts.body);
    init.headers['Content-Type'] = 'application/json';
  }
  const res = await fetch(url, init);
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = { error: 'bad_response', reason: text.slice(0, 300) }; }
  }
  if (!res.ok) {
    if (res.status === 401 && !url.startsWith('/v1/auth/') && session && session.auth) {
      needLogin('Your session has ended; log in again.');
    }
    throw new ApiError(res.status, data || {});
  }
  return { data, etag: res.headers.get('ETag'), status: res.status };
}

const seg = (s) => s.split('/').filter(Boolean).map(encodeURIComponent).join('/');
const repoURL = (repo) => '/v1/repos/' + seg(repo);
const itemURL = (path) => '/v1/items/' + seg(path);
const itemHash = (path) => '#/item/' + seg(path);
const repoHash = (repo) => '#/repo/' + seg(repo);

// ---- routing --------------------------------------------------------------

function route() {
  if (leave) { leave(); leave = null; }
  const raw = location.hash.slice(1) || '/repos';
  const [path, query = ''] = raw.split('?');
  const params = new URLSearchParams(query);
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const section = parts[0] || 'repos';
  for (const a of document.querySelectorAll('nav a')) {
    const on = a.dataset.section === section || (a.dataset.section === 'repos' && (section === 'repo' || section === 'item'));
    if (on) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  if (session && session.auth && !session.user && section !== 'login') {
    needLogin();
    return;
  }
  const views = {
    login: () => viewLogin(),
    repos: () => viewRepos(),
    repo: () => viewItems('/' + parts.slice(1, 3).join('/'), params),
    item: () => viewItem('/' + parts.slice(1).join('/')),
    live: () => viewLive(params),
    server: () => viewServer(),
  };
  main.replaceChildren();
  say('');
  (views[section] || viewMissing)();
}

function viewMissing() {
  main.append(title('Not found'), h('p', {}, 'No such page. ', h('a', { href: '#/repos', text: 'Repositories' })));
}

function focusTitle() {
  const t = main.querySelector('h1');
  if (t) t.focus();
}

// ---- login ----------------------------------------------------------------

async function loadSession() {
  try {
    session = (await api('GET', '/v1/auth/session')).data;
  } catch (err) {
    if (err.status === 401) session = { auth: true };
    else if (err.status === 404) session = { auth: false }; // a server without the auth routes
    else throw err;
  }
  const who = document.getElementById('who');
  const out = document.getElementById('logout');
  who.textContent = session.user ? 'Logged in as ' + session.user : session.auth ? '' : 'No authentication';
  out.hidden = !session.user;
}

function needLogin(msg) {
  if (location.hash.startsWith('#/login')) return;
  const here = location.hash || '#/repos';
  afterLogin = here;
  session = { auth: true };
  document.getElementById('who').textContent = '';
  document.getElementById('logout').hidden = true;
  location.hash = '#/login';
  if (msg) setTimeout(() => say(msg), 0);
}

function viewLogin() {
  if (session && !session.auth) {
    main.append(title('Log in'), h('p', {}, 'This server needs no login. ', h('a', { href: '#/repos', text: 'Repositories' })));
    return focusTitle();
  }
  const user = h('input', { name: 'user', autocomplete: 'username', required: true });
  const code = h('input', { name: 'code', autocomplete: 'one-time-code', required: true, spellcheck: 'false' });
  const err = errorBox('login-error');
  const submit = h('button', { type: 'submit', text: 'Log in' });
  const form = h('form', { class: 'login', 'aria-describedby': 'login-error' },
    h('p', { class: 'muted', text: 'Log in with your user name and the login code your operator gave you (goatdb user add).' }),
    field('User', user), field('Login code', code), submit, err);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    submit.disabled = true;
    show(err, null);
    try {
      await api('POST', '/v1/auth/token', { body: { user: user.value.trim(), code: code.value.trim() } });
      await loadSession();
      say('Logged in as ' + session.user + '.');
      location.hash = afterLogin.startsWith('#/login') ? '#/repos' : afterLogin;
    } catch (e) {
      show(err, e);
      code.focus();
    } finally {
      submit.disabled = false;
    }
  });
  main.append(title('Log in'), form);
  user.focus();
}

async function logout() {
  try {
    await api('DELETE', '/v1/auth/token');
  } catch (e) {
    say('Log out: ' + describe(e));
  }
  afterLogin = '#/repos';
  await loadSession().catch(() => {});
  say('Logged out.');
  if (session.auth && !session.user) location.hash = '#/login';
  else route();
}

// ---- repositories ---------------------------------------------------------

async function viewRepos() {
  main.append(title('Repositories'));
  const err = errorBox('repos-error');
  main.append(err);
  focusTitle();
  try {
    const { data } = await api('GET', '/v1/repos');
    const repos = data.repos || [];
    if (!repos.length) {
      main.append(h('p', { text: 'No repositories yet (or none you may read).' }));
      return;
    }
    main.append(h('table', { id: 'repos' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col', text: 'Repository' }), h('th', { scope: 'col', class: 'num', text: 'Items' }), h('th', { scope: 'col', text: 'Watch' }))),
      h('tbody', {}, repos.map((r) => h('tr', {},
        h('td', {}, h('a', { href: repoHash(r.path), text: r.path })),
        h('td', { class: 'num', text: r.items ?? '' }),
        h('td', {}, h('a', { href: '#/live?repo=' + encodeURIComponent(r.path), 'aria-label': 'Live query of ' + r.path, text: 'live' })),
      )))));
    say(repos.length + (repos.length === 1 ? ' repository.' : ' repositories.'));
  } catch (e) {
    show(err, e);
  }
}

// ---- items ----------------------------------------------------------------

function itemsQuery(repo, q, after) {
  const p = new URLSearchParams();
  if (q.filter) p.set('filter', q.filter);
  if (q.sort) p.set('sort', q.sort);
  if (q.desc) p.set('desc', 'true');
  p.set('limit', String(q.limit || 50));
  if (after) p.set('after', after);
  return repoURL(repo) + '/items?' + p;
}

function summary(fields) {
  const s = Object.entries(fields || {}).map(([k, v]) => k + ': ' + show_value(v)).join(', ');
  return s.length > 160 ? s.slice(0, 157) + '…' : s;
}

function itemsTable(id, rows) {
  return h('table', { id },
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col', text: 'Key' }), h('th', { scope: 'col', text: 'Changed' }), h('th', { scope: 'col', text: 'Fields' }))),
    h('tbody', {}, rows.map((it) => h('tr', { 'data-key': it.key },
      h('td', {}, h('a', { href: itemHash(it.path), text: it.key })),
      h('td', {}, time(it.time)),
      h('td', { class: 'summary', title: summary(it.fields), text: summary(it.fields) })))));
}

function queryForm(q, onSubmit, extra) {
  const filter = h('input', { name: 'filter', class: 'wide mono', value: q.filter || '', placeholder: 'e.g. done == false && priority > 2', 'aria-describedby': 'filter-error', spellcheck: 'false' });
  const sort = h('input', { name: 'sort', value: q.sort || '', placeholder: 'key order', size: 12 });
  const desc = h('input', { type: 'checkbox', name: 'desc' });
  desc.checked = !!q.desc;
  const limit = h('select', { name: 'limit' }, [10, 20, 50, 100, 500].map((n) => h('option', { value: n, text: n })));
  limit.value = String(q.limit || 50);
  const form = h('form', { class: 'row', role: 'search' },
    extra || null,
    field('Filter', filter), field('Sort by field', sort), field('Descending', desc, 'check'), field('Per page', limit),
    h('button', { type: 'submit', text: 'Apply' }));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    onSubmit({ filter: filter.value.trim(), sort: sort.value.trim(), desc: desc.checked, limit: Number(limit.value) });
  });
  return { form, filter };
}

function readQuery(params) {
  return { filter: params.get('filter') || '', sort: params.get('sort') || '', desc: params.get('desc') === '1', limit: Number(params.get('limit')) || 50 };
}

function writeQuery(q, base) {
  const p = new URLSearchParams(base || {});
  if (q.filter) p.set('filter', q.filter);
  if (q.sort) p.set('sort', q.sort);
  if (q.desc) p.set('desc', '1');
  if (q.limit && q.limit !== 50) p.set('limit', String(q.limit));
  return p.toString();
}

function viewItems(repo, params) {
  const q = readQuery(params);
  main.append(h('p', {}, h('a', { href: '#/repos', text: '← Repositories' })), title(repo));
  const { form, filter } = queryForm(q, (nq) => {
    const s = writeQuery(nq);
    const target = repoHash(repo) + (s ? '?' + s : '');
    if (location.hash === target) load(null); else location.hash = target;
  });
  const err = errorBox('filter-error');
  const out = h('div', { id: 'items-out' });
  const prev = h('button', { type: 'button', class: 'plain', text: '← Previous page', disabled: true });
  const next = h('button', { type: 'button', id: 'next-page', text: 'Next page →', disabled: true });
  const pageInfo = h('span', { class: 'muted', 'aria-live': 'polite' });
  const newKey = h('input', { name: 'key', required: true, size: 16, spellcheck: 'false' });
  const create = h('form', { class: 'row', id: 'new-item' }, field('New item key', newKey), h('button', { type: 'submit', text: 'Create…' }));
  create.addEventListener('submit', (ev) => {
    ev.preventDefault();
    location.hash = itemHash(repo + '/' + newKey.value.trim());
  });
  main.append(form, err, out, h('nav', { class: 'row', 'aria-label': 'Pages' }, prev, next, pageInfo), h('h2', { text: 'New item' }), create);
  focusTitle();
  const cursors = []; // the "after" of each page before the current one
  let current = null; let nextCursor = null; let page = 1;
  async function load(after) {
    say('Loading…');
    try {
      const { data } = await api('GET', itemsQuery(repo, q, after));
      filter.removeAttribute('aria-invalid');
      show(err, null);
      current = after;
      nextCursor = data.next || null;
      const items = data.items || [];
      out.replaceChildren(items.length ? itemsTable('items', items) : h('p', { id: 'items', text: 'No items match.' }));
      next.disabled = !nextCursor;
      prev.disabled = !cursors.length;
      pageInfo.textContent = `Page ${page}, ${items.length} item${items.length === 1 ? '' : 's'}${nextCursor ? ', more follow' : ''}.`;
      say('');
    } catch (e) {
      if (e.status === 400) filter.setAttribute('aria-invalid', 'true');
      show(err, e);
      say('');
    }
  }
  next.addEventListener('click', () => { cursors.push(current); page++; load(nextCursor); });
  prev.addEventListener('click', () => { page--; load(cursors.pop()); });
  load(null);
}

// ---- one item -------------------------------------------------------------

function fieldsTable(fields) {
  const names = Object.keys(fields || {}).sort();
  if (!names.length) return h('p', { id: 'fields', text: 'No fields.' });
  return h('table', { id: 'fields' },
    h('thead', {}, h('tr', {}, h('th', { scope: 'col', text: 'Field' }), h('th', { scope: 'col', text: 'Value' }))),
    h('tbody', {}, names.map((n) => h('tr', {}, h('th', { scope: 'row', class: 'mono', text: n }), h('td', { class: 'val', text: show_value(fields[n]) })))));
}

function viewItem(path) {
  const repo = path.split('/').slice(0, 3).join('/');
  const key = path.split('/').slice(3).join('/');
  main.append(h('p', {}, h('a', { href: repoHash(repo), text: '← ' + repo })), title(key));
  const meta = h('p', { class: 'muted', id: 'item-meta' });
  const loadErr = errorBox('item-error');
  const fieldsBox = h('div');
  const editor = h('textarea', { id: 'editor', name: 'fields', spellcheck: 'false', 'aria-describedby': 'editor-help editor-error' });
  const saveErr = errorBox('editor-error');
  const saved = h('p', { class: 'note', id: 'editor-note', role: 'status' });
  const save = h('button', { type: 'submit', id: 'save', text: 'Save' });
  const reload = h('button', { type: 'button', class: 'plain', text: 'Reload' });
  const form = h('form', {},
    h('p', { id: 'editor-help', class: 'muted', text: 'All the item\'s fields as one JSON object; saving replaces the item. Saving fails if someone else changed it since it was loaded.' }),
    field('Fields (JSON)', editor), h('div', { class: 'row' }, save, reload), saveErr, saved);
  const histBox = h('div', { id: 'history-box' });
  const diffBox = h('div', { id: 'diff-box', 'aria-live': 'polite' });
  main.append(meta, loadErr,
    h('div', { class: 'cols' },
      h('section', { 'aria-labelledby': 'h-fields' }, h('h2', { id: 'h-fields', text: 'Fields' }), fieldsBox),
      h('section', { 'aria-labelledby': 'h-edit' }, h('h2', { id: 'h-edit', text: 'Edit' }), form)),
    h('section', { 'aria-labelledby': 'h-hist' }, h('h2', { id: 'h-hist', text: 'History' }), histBox, diffBox));
  focusTitle();
  let etag = null;

  function render(it) {
    etag = it.etag;
    const d = it.data;
    meta.replaceChildren(d.deleted ? 'Deleted. ' : '', 'Head ', h('code', { text: d.head || '' }),
      ' at ', time(d.time), d.schema ? ', schema ' + d.schema : '');
    fieldsBox.replaceChildren(fieldsTable(d.fields));
    editor.value = JSON.stringify(d.fields || {}, null, 2);
    editor.removeAttribute('aria-invalid');
  }

  async function load() {
    show(loadErr, null);
    try {
      render(await api('GET', itemURL(path)));
      save.textContent = 'Save';
      loadHistory();
    } catch (e) {
      if (e.status === 404) {
        etag = null;
        meta.textContent = 'No such item yet: saving creates it.';
        fieldsBox.replaceChildren(fieldsTable({}));
        editor.value = '{\n  \n}';
        save.textContent = 'Create';
        histBox.replaceChildren();
      } else {
        show(loadErr, e);
      }
    }
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    show(saveErr, null);
    saved.textContent = '';
    let body;
    try {
      body = JSON.parse(editor.value);
      if (!body || typeof body !== 'object' || Array.isArray(body)) throw new Error('the fields must be one JSON object');
    } catch (e) {
      editor.setAttribute('aria-invalid', 'true');
      saveErr.textContent = 'Not valid JSON: ' + e.message;
      editor.focus();
      return;
    }
    save.disabled = true;
    try {
      const headers = etag ? { 'If-Match': etag } : { 'If-None-Match': '*' };
      const res = await api('PUT', itemURL(path), { body, headers });
      render(res);
      save.textContent = 'Save';
      saved.textContent = (res.status === 201 ? 'Created' : 'Saved') + ' at ' + (res.data.time || 'now') + '.';
      loadHistory();
    } catch (e) {
      editor.setAttribute('aria-invalid', 'true');
      if (e.status === 412) {
        saveErr.replaceChildren('412: someone else changed this item since you loaded it. ',
          h('button', { type: 'button', class: 'plain', text: 'Reload their version', onclick: () => { show(saveErr, null); load(); } }),
          ' (your edit is lost on reload; copy it first if you need it).');
      } else {
        show(saveErr, e);
      }
    } finally {
      save.disabled = false;
    }
  });
  reload.addEventListener('click', () => { show(saveErr, null); saved.textContent = ''; load(); });

  async function loadHistory() {
    try {
      const { data } = await api('GET', itemURL(path) + '/history?limit=200');
      const commits = data.commits || [];
      const opts = (sel) => commits.map((c, i) => h('option', { value: c.id, selected: i === sel, text: `${c.time} · ${c.id.slice(0, 10)}${c.merge ? ' (merge)' : ''}` }));
      const from = h('select', { id: 'diff-from', name: 'from' }, opts(Math.min(1, commits.length - 1)));
      const to = h('select', { id: 'diff-to', name: 'to' }, opts(0));
      const diffForm = h('form', { class: 'row', id: 'diff-form' }, field('From version', from), field('To version', to), h('button', { type: 'submit', text: 'Show diff' }));
      diffForm.addEventListener('submit', (ev) => { ev.preventDefault(); showDiff(from.value, to.value); });
      histBox.replaceChildren(
        h('ol', { class: 'history', id: 'history' }, commits.map((c, i) => h('li', {},
          time(c.time), ' ', h('code', { text: c.id.slice(0, 16), title: c.id }),
          c.merge ? ' merge' : '', ' by ', h('code', { class: 'muted', text: (c.session || '').slice(0, 12), title: c.session || '' }),
          i + 1 < commits.length ? [' ', h('button', { type: 'button', class: 'plain', text: 'diff with previous', 'aria-label': 'Diff ' + c.id.slice(0, 10) + ' with the version before', onclick: () => { from.value = commits[i + 1].id; to.value = c.id; showDiff(commits[i + 1].id, c.id); } })] : ''))),
        commits.length > 1 ? diffForm : h('p', { class: 'muted', text: 'One version: nothing to compare.' }));
    } catch (e) {
      histBox.replaceChildren(h('p', { class: 'error', text: 'History: ' + describe(e) }));
    }
  }

  async function showDiff(a, b) {
    try {
      const { data } = await api('GET', itemURL(path) + '/diff?' + new URLSearchParams({ from: a, to: b }));
      const ch = data.changes || [];
      diffBox.replaceChildren(h('h3', { text: `Changes from ${(data.from || a).slice(0, 10)} to ${(data.to || b).slice(0, 10)}` }),
        data.deleted ? h('p', { text: 'The item was deleted.' }) : '', data.restored ? h('p', { text: 'The item was restored.' }) : '',
        ch.length ? h('table', { id: 'diff' },
          h('thead', {}, h('tr', {}, ['Field', 'Change', 'From', 'To'].map((t) => h('th', { scope: 'col', text: t })))),
          h('tbody', {}, ch.map((c) => h('tr', {},
            h('th', { scope: 'row', class: 'mono', text: c.field }), h('td', { class: 'op-' + c.op, text: c.op }),
            h('td', { class: 'val', text: c.op === 'added' ? '' : show_value(c.from) }),
            h('td', { class: 'val', text: c.op === 'removed' ? '' : show_value(c.to) })))))
          : h('p', { id: 'diff', text: 'No field changed.' }));
    } catch (e) {
      diffBox.replaceChildren(h('p', { class: 'error', role: 'alert', text: 'Diff: ' + describe(e) }));
    }
  }

  load();
}

// ---- live query -----------------------------------------------------------

async function viewLive(params) {
  const q = readQuery(params);
  const repo = params.get('repo') || '';
  main.append(title('Live query'), h('p', { class: 'muted', text: 'The results follow every commit to the repository as it arrives.' }));
  const repoSel = h('select', { name: 'repo', required: true }, h('option', { value: '', text: 'Choose…' }));
  const { form, filter } = queryForm(q, (nq) => {
    location.hash = '#/live?' + writeQuery(nq, { repo: repoSel.value });
  }, field('Repository', repoSel));
  const err = errorBox('filter-error');
  const state = h('p', { id: 'live-state', class: 'muted', role: 'status', 'aria-live': 'polite' });
  const out = h('div', { id: 'live-out' });
  const log = h('ol', { id: 'live-log', class: 'history', 'aria-label': 'Recent changes' });
  main.append(form, err, state, out, h('h2', { text: 'Recent changes' }), log);
  focusTitle();
  let es = null; let timer = null; let stopped = false;
  const changed = new Set();
  leave = () => { stopped = true; if (es) es.close(); clearTimeout(timer); };
  try {
    const { data } = await api('GET', '/v1/repos');
    for (const r of data.repos || []) repoSel.append(h('option', { value: r.path, text: r.path }));
    if (repo && ![...repoSel.options].some((o) => o.value === repo)) repoSel.append(h('option', { value: repo, text: repo }));
    repoSel.value = repo;
  } catch (e) {
    show(err, e);
  }
  if (!repo || stopped) return;

  async function run() {
    try {
      const { data } = await api('GET', itemsQuery(repo, q, null));
      if (stopped) return;
      filter.removeAttribute('aria-invalid');
      show(err, null);
      const items = data.items || [];
      const table = items.length ? itemsTable('live', items) : h('p', { id: 'live', text: 'No items match.' });
      for (const tr of table.querySelectorAll ? table.querySelectorAll('tr[data-key]') : []) {
        if (changed.has(tr.dataset.key)) tr.classList.add('flash');
      }
      out.replaceChildren(table);
      changed.clear();
      setTimeout(() => { for (const tr of out.querySelectorAll('tr.flash')) tr.classList.remove('flash'); }, 50);
    } catch (e) {
      if (e.status === 400) filter.setAttribute('aria-invalid', 'true');
      show(err, e);
    }
  }

  let since = '';
  try {
    since = (await api('GET', repoURL(repo))).data.cursor || '';
  } catch (e) {
    show(err, e);
    return;
  }
  await run();
  if (stopped) return;
  const url = '/v1/changes?' + new URLSearchParams(since ? { repo, since } : { repo });
  es = new EventSource(url, { withCredentials: false });
  state.textContent = 'Connecting…';
  es.addEventListener('open', () => { state.textContent = 'Live: waiting for changes.'; });
  es.addEventListener('ready', () => { state.textContent = 'Live: waiting for changes.'; });
  es.addEventListener('error', () => {
    state.textContent = es.readyState === EventSource.CLOSED ? 'Disconnected. Reload the page to reconnect.' : 'Reconnecting…';
  });
  es.addEventListener('change', (ev) => {
    let c = {};
    try { c = JSON.parse(ev.data); } catch { return; }
    changed.add(c.key);
    log.prepend(h('li', {}, time(new Date().toISOString()), ' ', h('a', { href: itemHash(c.path || repo + '/' + c.key), text: c.key }), c.deleted ? ' deleted' : ' changed'));
    while (log.children.length > 20) log.lastChild.remove();
    state.textContent = 'Live: last change to ' + c.key + '.';
    clearTimeout(timer);
    timer = setTimeout(run, 100); // one query for a burst of changes
  });
}

// ---- server ---------------------------------------------------------------

function factList(obj, id) {
  const entries = Object.entries(obj || {});
  if (!entries.length) return h('p', { class: 'muted', text: 'None.' });
  const dd = (v) => v && typeof v === 'object' && !Array.isArray(v) ? h('dd', {}, factList(v)) : h('dd', { class: 'mono', text: show_value(v) });
  return h('dl', { class: 'facts', id }, entries.flatMap(([k, v]) => [h('dt', { text: k.replaceAll('_', ' ') }), dd(v)]));
}

async function viewServer() {
  main.append(title('Server'));
  const err = errorBox('server-error');
  main.append(err);
  focusTitle();
  try {
    const { data } = await api('GET', '/v1/server');
    const { quotas, metrics, ...rest } = data;
    main.append(h('section', { 'aria-labelledby': 'h-health' }, h('h2', { id: 'h-health', text: 'Health' }), factList(rest, 'server-facts')),
      h('section', { 'aria-labelledby': 'h-quotas' }, h('h2', { id: 'h-quotas', text: 'Your quotas' }), factList(quotas, 'server-quotas')),
      h('section', { 'aria-labelledby': 'h-metrics' }, h('h2', { id: 'h-metrics', text: 'Metrics' }), factList(metrics, 'server-metrics')));
  } catch (e) {
    show(err, e);
  }
}

// ---- start ----------------------------------------------------------------

document.getElementById('logout').addEventListener('click', logout);
window.addEventListener('hashchange', route);
loadSession().then(() => {
  if (session.auth && !session.user) {
    afterLogin = location.hash && !location.hash.startsWith('#/login') ? location.hash : '#/repos';
    if (!location.hash.startsWith('#/login')) { location.hash = '#/login'; return; }
  }
  route();
}, (e) => { say('The server did not answer: ' + describe(e)); });
