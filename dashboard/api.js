'use strict';
// The dashboard's link to the admin API: the token, calls, errors, sign-in and sign-out.
// Everything the API sends is rendered as text (textContent, text nodes), never as HTML.

const POLL_MS = 2000;
const TOKEN_KEY = 'intermission.token';

const session = {
  token: null,
  timer: null,
  pollSeq: 0,
  bannerFromPoll: false,
  onSignedOut: () => {},  // set by app.js: forget what was shown
};

const $ = (id) => document.getElementById(id);

// An element with properties (className, textContent, title...) and children; strings
// become text nodes, so API text cannot turn into markup.
function el(tag, props, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props || {});
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// One call; resolves with the JSON body, rejects with an ApiError carrying the API's
// `error` text (or what went wrong on the way).
async function api(method, path, body) {
  const init = { method, cache: 'no-store', headers: { Authorization: 'Bearer ' + session.token } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['Content-Type'] = 'application/json';
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, `cannot reach the admin API (${e.message})`);
  }
  let data = null;
  try {
    data = await res.json();
  } catch (e) {
    data = null;  // not JSON: said below
  }
  if (!res.ok) {
    const text = data && typeof data.error === 'string' ? data.error : `HTTP ${res.status}`;
    throw new ApiError(res.status, text);
  }
  if (data === null) throw new ApiError(res.status, 'the admin API answered with something that is not JSON');
  return data;
}

function showError(message, fromPoll) {
  $('banner-text').textContent = message;
  $('banner').hidden = false;
  session.bannerFromPoll = Boolean(fromPoll);
}

function hideError() {
  $('banner').hidden = true;
  session.bannerFromPoll = false;
}

let noticeTimer = null;
function notice(message) {
  $('notice').textContent = message;
  $('notice').hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { $('notice').hidden = true; }, 4000);
}

// A refused token means this tab is no longer signed in, wherever the 401 came from
// (a token removed from the config and reloaded, say).
function refused(e) {
  if (!(e instanceof ApiError) || e.status !== 401) return false;
  signOut(`The admin API refused the token: ${e.message}. Sign in again.`, true);
  return true;
}

// An operator's action: errors go to the banner with the API's text; a success refreshes
// the view at once. Resolves with the answer, or null when it failed.
async function act(method, path, body) {
  try {
    const answer = await api(method, path, body);
    hideError();
    poll();
    return answer;
  } catch (e) {
    if (!refused(e)) showError(`${method} ${path}: ${e.message}`);
    return null;
  }
}

function setLive(text, bad) {
  $('live').textContent = text;
  $('live').classList.toggle('bad', Boolean(bad));
}

// Short polling: sites, targets and the audit log every POLL_MS. A poll started while
// another is on its way (after an action) takes over; the older answer is dropped.
async function poll() {
  const seq = ++session.pollSeq;
  clearTimeout(session.timer);
  if (!session.token) return;
  try {
    const [sites, targets, audit] = await Promise.all([
      api('GET', '/v1/sites'), api('GET', '/v1/targets'), api('GET', '/v1/audit?limit=50')]);
    if (seq !== session.pollSeq || !session.token) return;
    render(sites, targets, audit);
    if (session.bannerFromPoll) hideError();
    setLive(`live · updated ${new Date().toLocaleTimeString()}`);
  } catch (e) {
    if (seq !== session.pollSeq || refused(e)) return;
    showError(`Updating failed: ${e.message}`, true);
    setLive('update failed, retrying', true);
  }
  session.timer = setTimeout(poll, POLL_MS);
}

function showSignIn(message, isError) {
  $('dashboard').hidden = true;
  $('sign-out').hidden = true;
  $('live').hidden = true;
  $('sign-in').hidden = false;
  const line = $('sign-in-error');
  line.textContent = message || '';
  line.hidden = !message;
  line.classList.toggle('info', !isError);
  $('token').focus();
}

async function signIn(token) {
  session.token = token;
  try {
    await api('GET', '/v1/sites');
  } catch (e) {
    session.token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    const why = e.status === 401 ? `Wrong admin token: ${e.message}` : `Cannot sign in: ${e.message}`;
    showSignIn(why, true);
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);  // this tab only; gone when it closes
  $('token').value = '';
  $('sign-in').hidden = true;
  $('sign-in-error').hidden = true;
  $('dashboard').hidden = false;
  $('sign-out').hidden = false;
  $('live').hidden = false;
  setLive('loading…');
  poll();
}

function signOut(message, isError) {
  session.token = null;
  session.pollSeq++;
  clearTimeout(session.timer);
  sessionStorage.removeItem(TOKEN_KEY);
  hideError();
  session.onSignedOut();
  showSignIn(message, isError);
}

document.addEventListener('DOMContentLoaded', () => {
  $('sign-in-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const token = $('token').value.trim();
    if (!token) return showSignIn('Enter an admin token.', true);
    signIn(token);
  });
  $('sign-out').addEventListener('click', () => signOut('Signed out.', false));
  $('banner-close').addEventListener('click', hideError);
  const kept = sessionStorage.getItem(TOKEN_KEY);
  if (kept) signIn(kept);
  else showSignIn();
});
