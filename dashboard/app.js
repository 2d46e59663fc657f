'use strict';
// The dashboard's view: every site with its maintenance state and targets, the audit log,
// and the operator's actions. Polling and the API are in api.js.

const HISTORY = 40;  // samples of each target kept while the page is open (one a poll)
const UNITS = { s: 1, m: 60, h: 3600, d: 86400 };

// A site's card is made once and then updated, so that what the operator is typing in its
// forms survives every poll.
const view = { cards: new Map(), history: new Map() };

session.onSignedOut = () => {
  view.cards.clear();
  view.history.clear();
  for (const id of ['sites', 'other-groups', 'audit']) $(id).replaceChildren();
};

function render(sites, targets, audit) {
  remember(targets.target_groups);
  const groups = new Map(targets.target_groups.map((g) => [g.name, g]));
  renderSites(sites.sites, groups);
  renderOtherGroups(sites.sites, targets.target_groups);
  renderAudit(audit.entries);
}

const sitePath = (site, rest) => `/v1/sites/${encodeURIComponent(site)}/${rest}`;
const targetKey = (t) => `${t.group}\n${t.address}`;

function remember(groups) {
  const at = new Date().toLocaleTimeString();
  for (const group of groups) {
    for (const t of group.targets) {
      const list = view.history.get(targetKey(t)) || [];
      list.push({ at, state: t.drained ? 'drained' : t.state, latency: t.latency_ms });
      if (list.length > HISTORY) list.shift();
      view.history.set(targetKey(t), list);
    }
  }
}

function renderSites(sites, groups) {
  const container = $('sites');
  const names = new Set(sites.map((s) => s.name));
  for (const [name, card] of view.cards) {
    if (!names.has(name)) {
      card.root.remove();
      view.cards.delete(name);
    }
  }
  sites.forEach((site, i) => {
    let card = view.cards.get(site.name);
    if (!card) {
      card = makeCard(site);
      view.cards.set(site.name, card);
    }
    // Moved only when out of place: moving a node takes the focus away from its inputs.
    if (container.children[i] !== card.root) container.insertBefore(card.root, container.children[i] || null);
    updateCard(card, site, groups);
  });
}

function makeCard(site) {
  const root = $('site-template').content.firstElementChild.cloneNode(true);
  root.dataset.site = site.name;
  const card = { name: site.name, root, q: (selector) => root.querySelector(selector) };
  wireMaintenance(card);
  wirePreview(card, site);
  return card;
}

function updateCard(card, site, groups) {
  const m = site.maintenance;
  const [word, kind] = m.on ? ['maintenance', 'maint'] : site.outage ? ['outage', 'bad'] : ['serving', 'ok'];
  const pill = card.q('.site-state');
  pill.textContent = word;
  pill.className = `pill site-state pill-${kind}`;
  card.root.classList.toggle('in-maintenance', m.on);
  card.root.classList.toggle('in-outage', !m.on && site.outage);
  card.q('.site-name').textContent = site.name;
  card.q('.site-summary').textContent = siteSummary(site);
  card.q('.maintenance-state').replaceChildren(...maintenanceRows(m));
  card.q('.groups').replaceChildren(...site.target_groups.map((g) => groupBlock(g, groups.get(g.name))));
}

function siteSummary(site) {
  const parts = [site.hosts.length ? site.hosts.join(', ') : 'any host'];
  if (site.default) parts.push('default site');
  parts.push(`default action: ${site.default_action}`, `${site.rules} rule${site.rules === 1 ? '' : 's'}`);
  return parts.join(' · ');
}

function relative(iso) {
  const minutes = Math.round((Date.parse(iso) - Date.now()) / 60000);
  if (Number.isNaN(minutes)) return '';
  if (minutes === 0) return ' (now)';
  return minutes > 0 ? ` (in ${minutes} min)` : ` (${-minutes} min ago)`;
}

function maintenanceRows(m) {
  const runtime = m.runtime;
  const decided = runtime || m.config;
  const windows = [...m.config.windows, ...(runtime ? runtime.windows : [])];
  const rows = [
    ['state', m.on ? 'on' : 'off'],
    ['source', runtime ? `api (set by ${runtime.who || 'unknown'}${runtime.started_at ? ' at ' + runtime.started_at : ''})` : 'config'],
    ['reason', decided.reason || '—'],
    ['until', m.until ? m.until + relative(m.until) : '—'],
    ['config', `enabled: ${m.config.enabled ? 'yes' : 'no'}${m.config.reason ? ', reason: ' + m.config.reason : ''}`],
  ];
  if (windows.length) {
    rows.push(['windows', windows.map((w) => `${w.start} → ${w.end}${w.reason ? ' (' + w.reason + ')' : ''}`).join('; ')]);
  }
  return rows.flatMap(([term, value]) => [
    el('dt', { textContent: term }),
    el('dd', { className: `m-${term}${term === 'state' ? ' maint-' + value : ''}`, textContent: value }),
  ]);
}

// While a call is on its way the form's buttons are off: one click, one change.
async function busy(form, work) {
  const buttons = [...form.querySelectorAll('button')];
  buttons.forEach((b) => { b.disabled = true; });
  try {
    return await work();
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
  }
}

// "until" as typed: a duration from now (45m, 2h), UTC seconds, or a time for the API to
// read (which says what is wrong with it).
function untilValue(text) {
  if (!text) return null;
  const d = /^(\d+)\s*([smhd])$/.exec(text);
  if (d) return new Date(Date.now() + Number(d[1]) * UNITS[d[2]] * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
  if (/^\d+$/.test(text)) return Number(text);
  return text;
}

function wireMaintenance(card) {
  const form = card.q('.maintenance-form');
  const path = sitePath(card.name, 'maintenance');
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const body = { on: true };
    const reason = form.elements.reason.value.trim();
    const until = untilValue(form.elements.until.value.trim());
    if (reason) body.reason = reason;
    if (until !== null) body.until = until;
    busy(form, async () => {
      if (!(await act('PUT', path, body))) return;
      notice(`Maintenance is on for ${card.name}.`);
      form.reset();
    });
  });
  form.elements.off.addEventListener('click', () => busy(form, async () => {
    if (await act('PUT', path, { on: false })) notice(`Maintenance is off for ${card.name}.`);
  }));
  form.elements.clear.addEventListener('click', () => busy(form, async () => {
    if (await act('DELETE', path)) notice(`The config decides maintenance of ${card.name} again.`);
  }));
}

function defaultBase(site) {
  const host = site.hosts.find((h) => !h.includes('*'));
  return host ? 'https://' + host : '';
}

// The public address is the operator's to set: the dashboard runs on the admin listener and
// cannot know how visitors reach the site. Kept per site in this browser.
function wirePreview(card, site) {
  const form = card.q('.preview-form');
  const key = 'intermission.public.' + site.name;
  form.elements.base.value = localStorage.getItem(key) || defaultBase(site);
  form.elements.base.addEventListener('change', () => localStorage.setItem(key, form.elements.base.value.trim()));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    busy(form, () => openPreview(card, form));
  });
}

async function openPreview(card, form) {
  const base = form.elements.base.value.trim().replace(/\/+$/, '');
  if (!/^https?:\/\/[^/\s?#]+$/.test(base)) {
    showError(`Preview of ${card.name}: enter the site's public address as visitors reach it: http or https, then :// and the host, with :port when it is not the usual one`);
    return;
  }
  const ttl = form.elements.ttl.value.trim();
  const grant = await act('POST', sitePath(card.name, 'bypass'), ttl ? { ttl } : undefined);
  if (!grant) return;
  const link = card.q('.preview-link');
  link.href = base + grant.path;
  link.textContent = `preview link, valid until ${grant.expires}`;
  link.hidden = false;
  window.open(link.href, '_blank', 'noopener,noreferrer');
}

function groupBlock(counts, group) {
  const checks = group && !group.health_checks ? ' · no active health checks' : '';
  const title = el('h4', {}, `Target group ${counts.name} `, el('span', {
    className: 'hint',
    textContent: `${counts.healthy}/${counts.targets} healthy, ${counts.serving} serving${checks}`,
  }));
  const block = el('div', { className: 'group' }, title, group ? targetTable(group) : null);
  block.dataset.group = counts.name;
  return block;
}

function targetTable(group) {
  const heads = ['target', 'state', 'latency', 'in flight', 'last check', 'failures', 'last error', 'recent history', ''];
  return el('table', { className: 'targets' },
    el('thead', {}, el('tr', {}, ...heads.map((h) => el('th', { textContent: h })))),
    el('tbody', {}, ...group.targets.map(targetRow)));
}

function targetRow(t) {
  const state = t.drained ? 'drained' : t.state;
  const pill = el('span', { className: `pill pill-${state}`, textContent: state });
  if (t.drain) pill.title = `drained by ${t.drain.who} since ${t.drain.since}${t.drain.reason ? ': ' + t.drain.reason : ''}`;
  const row = el('tr', {},
    el('td', { className: 'address', textContent: t.address }),
    el('td', { className: 'state' }, pill, t.drained && t.state !== 'healthy' ? ` (${t.state})` : null),
    el('td', { textContent: t.latency_ms === null ? '—' : `${t.latency_ms.toFixed(1)} ms` }),
    el('td', { textContent: String(t.in_flight) }),
    el('td', { textContent: t.last_check || '—' }),
    el('td', { textContent: String(t.consecutive_failures) }),
    el('td', { className: 'error-text', textContent: t.last_error || '' }),
    el('td', {}, historyBars(t)),
    el('td', {}, drainButton(t)));
  row.dataset.target = t.address;
  return row;
}

// One bar a poll: colour for the state, height for the latency (relative to the slowest
// seen); a failed or drained sample is full height so it stands out.
function historyBars(t) {
  const samples = view.history.get(targetKey(t)) || [];
  const slowest = Math.max(0.001, ...samples.map((s) => s.latency || 0));
  const bars = samples.map((s) => {
    const ms = s.latency === null ? '' : `, ${s.latency.toFixed(1)} ms`;
    const bar = el('span', { className: `bar bar-${s.state}`, title: `${s.at} ${s.state}${ms}` });
    const share = s.state === 'healthy' && s.latency !== null ? 0.25 + 0.75 * (s.latency / slowest) : 1;
    bar.style.height = `${Math.round(share * 100)}%`;  // CSSOM: allowed by the page's CSP
    return bar;
  });
  return el('span', { className: 'history' }, ...bars);
}

function drainButton(t) {
  const button = el('button', { type: 'button', className: 'quiet small', textContent: t.drained ? 'Undrain' : 'Drain' });
  const path = `/v1/targets/${encodeURIComponent(t.group)}/${encodeURIComponent(t.address)}/drain`;
  button.addEventListener('click', async () => {
    button.disabled = true;
    if (await act(t.drained ? 'DELETE' : 'PUT', path)) {
      notice(`${t.address} in ${t.group} is ${t.drained ? 'taking traffic again' : 'drained'}.`);
    }
    button.disabled = false;
  });
  return button;
}

function renderOtherGroups(sites, groups) {
  const used = new Set(sites.flatMap((s) => s.target_groups.map((g) => g.name)));
  const others = groups.filter((g) => !used.has(g.name));
  $('other-groups-section').hidden = others.length === 0;
  $('other-groups').replaceChildren(...others.map((g) => {
    const healthy = g.targets.filter((t) => t.state === 'healthy').length;
    const serving = g.targets.filter((t) => t.state === 'healthy' && !t.drained).length;
    return groupBlock({ name: g.name, targets: g.targets.length, healthy, serving }, g);
  }));
}

// An audit entry's before and after in a few words; the whole of them is in the tooltip.
function brief(value) {
  if (value === null || value === undefined) return '—';
  if (typeof value.on === 'boolean') return `maintenance ${value.on ? 'on' : 'off'} (${value.source || 'api'})`;
  if (typeof value.drained === 'boolean') return value.drained ? 'drained' : 'taking traffic';
  const text = JSON.stringify(value);
  return text.length > 60 ? text.slice(0, 57) + '…' : text;
}

function renderAudit(entries) {
  $('audit').replaceChildren(...entries.map((e) => {
    const change = el('td', { className: 'change', textContent: `${brief(e.before)} → ${brief(e.after)}` });
    change.title = `before: ${JSON.stringify(e.before)}\nafter: ${JSON.stringify(e.after)}`;
    return el('tr', {},
      ...[e.time, e.token, e.client, e.action, e.target, e.reason || ''].map((v) => el('td', { textContent: String(v) })),
      change);
  }));
}
