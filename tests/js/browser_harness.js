#!/usr/bin/env node
// harness.js's protocol, answered by tfjs' webgl backend in one headless Chromium.
//
// Same requests and answers as harness.js (one JSON object per line), with "backend":
// "webgl" (the only backend here) and no "timeit". The browser starts once, at the first
// line, and serves every later request, so a test session pays for one Chromium start.
// The browser side is rules/private/tfjs_browser.js (the same code tfjs_model_test runs):
// WebGL 2 on SwiftShader, float32 textures required. The first answer's "info" says what
// ran (tfjs version, WebGL version, WEBGL_RENDER_FLOAT32_CAPABLE, renderer); {"cmd":
// "info"} asks again.
//
//   node browser_harness.js [--chromium /usr/bin/chromium]
'use strict';

const path = require('path');
const readline = require('readline');
const { Browser } = require('../../rules/private/tfjs_browser.js');

const answerStream = process.stdout;

function send(obj) {
  answerStream.write(JSON.stringify(obj) + '\n');
}

function parseArgs(argv) {
  const args = { chromium: '/usr/bin/chromium' };
  for (let i = 0; i < argv.length; i += 2) {
    if (argv[i] === '--chromium' && argv[i + 1]) args.chromium = argv[i + 1];
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  return args;
}

async function handle(browser, req) {
  if (req.cmd === 'info') return { ok: true, info: browser.info };
  if (req.cmd != null) return browser.control(req.cmd);
  if ((req.backend || 'webgl') !== 'webgl') throw new Error(`this harness runs webgl only, not ${req.backend}`);
  if (req.timeit) throw new Error('"timeit" is not supported in the browser harness');
  if (typeof req.model !== 'string' || !path.isAbsolute(req.model)) {
    throw new Error('"model" must be an absolute path to model.json');
  }
  return browser.run({ modelJson: req.model, kind: req.kind, inputs: req.inputs || [], outputs: req.outputs || null });
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const tfjsScript = path.join(path.dirname(require.resolve('@tensorflow/tfjs/package.json')), 'dist', 'tf.min.js');
  let browser = null;
  let startError = null;
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  // One request at a time, in order, like harness.js.
  for await (const line of rl) {
    if (!line.trim()) continue;
    let req;
    try {
      req = JSON.parse(line);
    } catch (e) {
      send({ id: null, ok: false, error: `bad request JSON: ${e.message}` });
      continue;
    }
    try {
      if (!browser && !startError) {
        try {
          browser = await Browser.start({ chromium: args.chromium, tfjsScript });
        } catch (e) {
          startError = `cannot start the browser: ${(e && e.message) || e}`;
        }
      }
      if (startError) throw new Error(startError);
      send({ ...(await handle(browser, req)), id: req.id ?? null });
    } catch (e) {
      send({ id: req.id ?? null, ok: false, error: String((e && e.message) || e) });
    }
  }
  if (browser) await browser.close();
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`browser harness: ${(e && e.stack) || e}\n`);
    process.exit(1);
  },
);
