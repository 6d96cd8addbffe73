#!/usr/bin/env node
// Opens a page in headless Chromium, waits for window.__result, saves a screenshot and
// prints the result as one JSON line on stdout.
//
//   node browser_check.js --url URL --screenshot out.png [--chromium /usr/bin/chromium]
//                         [--timeout-ms 120000] [--gl swiftshader]
//
// --gl swiftshader gives the page WebGL 2 through SwiftShader (tfjs' webgl backend);
// without it the GPU is off.
//
// Uses the system Chromium through puppeteer-core (no browser download) with a fresh
// profile directory that is deleted afterwards. Page console output and errors go to
// stderr so a failing test shows what the page saw.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const puppeteer = require('puppeteer-core');

function parseArgs(argv) {
  const args = { chromium: '/usr/bin/chromium', timeoutMs: 120000, gl: 'none' };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i];
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`missing value for ${key}`);
    if (key === '--url') args.url = value;
    else if (key === '--screenshot') args.screenshot = value;
    else if (key === '--chromium') args.chromium = value;
    else if (key === '--timeout-ms') args.timeoutMs = Number(value);
    else if (key === '--gl' && ['none', 'swiftshader'].includes(value)) args.gl = value;
    else throw new Error(`unknown argument ${key}`);
  }
  if (!args.url) throw new Error('--url is required');
  return args;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'tfjs-chromium-'));
  let browser;
  try {
    browser = await puppeteer.launch({
      executablePath: args.chromium,
      headless: true,
      userDataDir: profile,
      args: [
        '--headless',
        '--no-sandbox',
        ...(args.gl === 'swiftshader' ? ['--use-angle=swiftshader', '--enable-unsafe-swiftshader'] : ['--disable-gpu']),
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        `--user-data-dir=${profile}`,
      ],
      timeout: args.timeoutMs,
    });
    const page = await browser.newPage();
    await page.setViewport({ width: 1000, height: 700 });
    page.on('console', (msg) => process.stderr.write(`[page ${msg.type()}] ${msg.text()}\n`));
    page.on('pageerror', (err) => process.stderr.write(`[page error] ${err.message}\n`));
    page.on('requestfailed', (req) =>
      process.stderr.write(`[request failed] ${req.url()} ${req.failure() && req.failure().errorText}\n`));
    await page.goto(args.url, { waitUntil: 'load', timeout: args.timeoutMs });
    await page.waitForFunction(() => window.__result !== undefined, { timeout: args.timeoutMs, polling: 100 });
    const result = await page.evaluate(() => window.__result);
    if (args.screenshot) {
      fs.mkdirSync(path.dirname(path.resolve(args.screenshot)), { recursive: true });
      await page.screenshot({ path: args.screenshot, fullPage: true });
    }
    process.stdout.write(JSON.stringify(result) + '\n');
    return result.ok ? 0 : 3;
  } finally {
    if (browser) await browser.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`browser_check failed: ${(err && err.stack) || err}\n`);
    process.exit(2);
  },
);
