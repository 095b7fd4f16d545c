// The local page: polls /api/state, refreshes each camera's frame, and sends changes as JSON.

const REFRESH_MS = 1000;
const $ = (id) => document.getElementById(id);
let timer = null;

/** fetch that turns a 401 into the login form and any other failure into an Error with the server's message. */
async function api(path, options = {}) {
  const init = { credentials: 'same-origin', ...options };
  if (options.json !== undefined) {
    init.method = init.method ?? 'POST';
    init.headers = { 'content-type': 'application/json' };
    init.body = JSON.stringify(options.json);
  }
  const response = await fetch(path, init);
  if (response.status === 401 && path !== '/login') {
    showLogin();
    throw new Error('log in first');
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error ?? `HTTP ${response.status}`);
  return body;
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key.includes('-')) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) node.append(child);
  return node;
}

function showLogin() {
  clearInterval(timer);
  timer = null;
  $('main').hidden = true;
  $('login').hidden = false;
  $('password').focus();
}

function showMain() {
  $('login').hidden = true;
  $('main').hidden = false;
  if (!timer) timer = setInterval(refresh, REFRESH_MS);
  refresh();
}

/** Runs a change, shows its error (if any) and refreshes. */
async function act(fn) {
  $('status').textContent = '';
  try {
    await fn();
  } catch (e) {
    $('status').textContent = e.message;
  }
  refresh();
}

function renderCameras(cameras) {
  const root = $('cameras');
  for (const camera of cameras) {
    let box = root.querySelector(`[data-camera="${CSS.escape(camera.id)}"]`);
    if (!box) {
      box = el('div', { className: 'camera' });
      box.dataset.camera = camera.id;
      box.append(
        el('img', { className: 'frame', alt: `camera ${camera.id}` }),
        el('span', { className: 'caption' }),
      );
      root.append(box);
    }
    const img = box.querySelector('img.frame');
    img.src = `/api/cameras/${encodeURIComponent(camera.id)}/frame.jpg?t=${Date.now()}`;
    box.querySelector('.caption').textContent = `${camera.id} · ${camera.fps.toFixed(1)} fps`;
    for (const old of box.querySelectorAll('.face-box')) old.remove();
    const view = camera.view;
    if (!view) continue;
    for (const face of view.faces) {
      const [x, y, w, h] = face.box;
      const known = face.label !== null && !face.label.startsWith('unknown-');
      const div = el(
        'div',
        { className: `face-box${known ? ' known' : ''}` },
        el('span', { textContent: face.label ?? '…' }),
      );
      Object.assign(div.style, {
        left: `${(100 * x) / view.width}%`,
        top: `${(100 * y) / view.height}%`,
        width: `${(100 * w) / view.width}%`,
        height: `${(100 * h) / view.height}%`,
      });
      box.append(div);
    }
  }
}

function renderEvents(events) {
  $('events').replaceChildren(
    ...events.slice(0, 20).map((e) =>
      el(
        'li',
        {},
        el('img', { src: `/api/events/${e.id}/crop.jpg`, alt: '' }),
        el('span', { className: `type-${e.type}`, textContent: e.type }),
        el('span', { textContent: e.identity ?? e.unknownId ?? '' }),
        el('span', {
          className: 'muted',
          textContent: `${e.camera} · ${new Date(e.time).toLocaleTimeString()}`,
        }),
      ),
    ),
  );
}

function renderPeople(people) {
  $('people').replaceChildren(
    ...people.map((p) => {
      const rename = el('input', { value: p.name, 'aria-label': `new name for ${p.name}` });
      return el(
        'li',
        {},
        el('img', { src: `/api/people/${encodeURIComponent(p.name)}/photo.jpg`, alt: p.name }),
        el('strong', { textContent: p.name }),
        el('div', { className: 'muted', textContent: `${p.embeddings} face(s)` }),
        rename,
        el('button', {
          textContent: 'Rename',
          onclick: () =>
            act(() =>
              api(`/api/people/${encodeURIComponent(p.name)}/rename`, { json: { name: rename.value } }),
            ),
        }),
        el('button', {
          textContent: 'Remove',
          onclick: () => act(() => api(`/api/people/${encodeURIComponent(p.name)}`, { method: 'DELETE' })),
        }),
      );
    }),
  );
}

function renderUnknowns(unknowns) {
  const root = $('unknowns');
  // Keep the card being typed into.
  const typing = root.querySelector('input:focus')?.closest('li')?.dataset.id;
  const cards = unknowns.map((u) => {
    const existing = typing === u.id ? root.querySelector(`[data-id="${u.id}"]`) : null;
    if (existing) return existing;
    const name = el('input', { placeholder: 'name', 'aria-label': `name for ${u.id}` });
    const card = el(
      'li',
      {},
      el('img', { src: `/api/unknowns/${u.id}/crop.jpg`, alt: u.id }),
      el('strong', { textContent: u.id }),
      el('div', {
        className: 'muted',
        textContent: `${u.visits} visit(s), last ${new Date(u.lastSeen).toLocaleString()}`,
      }),
      name,
      el('button', {
        textContent: 'Enrol',
        onclick: () => act(() => api(`/api/unknowns/${u.id}/enroll`, { json: { name: name.value } })),
      }),
      el('button', {
        textContent: 'Dismiss',
        onclick: () => act(() => api(`/api/unknowns/${u.id}/dismiss`, { json: {} })),
      }),
    );
    card.dataset.id = u.id;
    return card;
  });
  root.replaceChildren(...cards);
}

function renderHealth(h) {
  const temp = h.cpuTemperatureC === null ? '' : ` · CPU ${h.cpuTemperatureC.toFixed(0)} °C`;
  $('health').textContent =
    `up ${Math.round(h.uptimeSeconds)} s · RSS ${(h.memory.rssBytes / 2 ** 20).toFixed(0)} MiB${temp} · queue ${h.queueDepth}`;
}

async function refresh() {
  try {
    const state = await api('/api/state');
    renderCameras(state.cameras);
    renderEvents(state.events);
    renderPeople(state.people);
    renderUnknowns(state.unknowns);
    renderHealth(state.health);
  } catch (e) {
    if (!$('main').hidden) $('status').textContent = e.message;
  }
}

$('login-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  $('login-error').textContent = '';
  try {
    await api('/login', { json: { password: $('password').value } });
    showMain();
  } catch (e) {
    $('login-error').textContent = e.message;
  }
});

$('add-person').addEventListener('submit', (event) => {
  event.preventDefault();
  const file = $('add-photo').files[0];
  act(async () => {
    const bytes = new Uint8Array(await file.arrayBuffer());
    let binary = '';
    for (const b of bytes) binary += String.fromCharCode(b);
    await api('/api/people', { json: { name: $('add-name').value, photo: btoa(binary) } });
    $('add-person').reset();
  });
});

showMain();
