#!/usr/bin/env node
// Drives Debian's Chromium (through playwright-core) for tests/e2e/test_dashboard.py.
// The test sends one JSON command a line on stdin and reads one JSON answer a line on
// stdout, so the browser steps and the test's own checks (the public URL answering 503,
// say) can alternate. Usage: node driver.js '{"allow": ["http://127.0.0.1:9901", ...]}'
// Every request to an origin not in `allow` is refused and reported: the page must need
// nothing from outside.
'use strict';

const readline = require('node:readline');
const { chromium } = require('playwright-core');

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const options = JSON.parse(process.argv[2] || '{}');
const allowed = new Set(options.allow || []);
const problems = { page_errors: [], csp: [], external: [] };

function watch(page) {
  page.on('pageerror', (e) => problems.page_errors.push(String(e)));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && msg.text().includes('Content Security Policy')) problems.csp.push(msg.text());
  });
}

// Waits until the element's text contains `text`; answers with the whole text.
async function waitText(page, selector, text, timeout) {
  const locator = page.locator(selector).first();
  const deadline = Date.now() + (timeout || 10000);
  let last = '';
  while (Date.now() < deadline) {
    if (await locator.count()) {
      last = (await locator.textContent()) || '';
      if (last.includes(text) && await locator.isVisible()) return last;
    }
    await page.waitForTimeout(100);
  }
  throw new Error(`${selector}: no visible text containing ${JSON.stringify(text)} (last: ${JSON.stringify(last)})`);
}

// Clicks and answers with what the tab it opened shows.
async function popup(context, page, selector) {
  const [tab] = await Promise.all([context.waitForEvent('page'), page.click(selector)]);
  await tab.waitForLoadState('load');
  const answer = { url: tab.url(), text: await tab.locator('body').innerText() };
  await tab.close();
  return answer;
}

async function run(context, page, cmd) {
  switch (cmd.op) {
    case 'goto': return (await page.goto(cmd.url)).status();
    case 'fill': return page.fill(cmd.selector, cmd.value);
    case 'click': return page.click(cmd.selector);
    case 'wait_text': return waitText(page, cmd.selector, cmd.text, cmd.timeout);
    case 'wait_hidden': return page.locator(cmd.selector).first().waitFor({ state: 'hidden' });
    case 'text': return page.locator(cmd.selector).first().textContent();
    case 'count': return page.locator(cmd.selector).count();
    case 'visible': return page.locator(cmd.selector).first().isVisible();
    case 'eval': return page.evaluate(cmd.expression);
    case 'popup': return popup(context, page, cmd.selector);
    case 'screenshot': return page.screenshot({ path: cmd.path, fullPage: true });
    case 'problems': return problems;
    default: throw new Error(`unknown op ${cmd.op}`);
  }
}

async function main() {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  context.setDefaultTimeout(10000);
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith('data:') || allowed.has(new URL(url).origin)) return route.continue();
    problems.external.push(url);
    return route.abort('blockedbyclient');
  });
  context.on('page', watch);
  const page = await context.newPage();
  const say = (answer) => process.stdout.write(JSON.stringify(answer) + '\n');
  say({ ok: true, value: browser.version() });
  for await (const line of readline.createInterface({ input: process.stdin })) {
    if (!line.trim()) continue;
    const cmd = JSON.parse(line);
    if (cmd.op === 'close') break;
    try {
      const value = await run(context, page, cmd);
      say({ ok: true, value: value === undefined ? null : value });
    } catch (e) {
      say({ ok: false, error: e.message.split('\n')[0] });
    }
  }
  await browser.close();
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ ok: false, error: `cannot start Chromium: ${e.message}` }) + '\n');
  process.exit(1);
});
