// Runs converted models on tfjs' webgl backend in headless Chromium, with Node's
// standard library only (no puppeteer): tfjs_model_test's runner and the Python tests'
// browser harness (tests/js/browser_harness.js) both use it.
//
// One Chromium per Browser: `Browser.start()` serves a page on 127.0.0.1 (tfjs' browser
// build, the page script and the registered model directories, nothing else) and opens
// it in Chromium with WebGL 2 through SwiftShader. The page long-polls GET /next for a
// job, runs it and POSTs the answer to /result/<id>, so any number of models run in one
// browser. `run()` takes and returns the harness protocol's tensors (base64
// little-endian bytes, see tests/js/harness.js).
//
// Float32 is required, not hoped for: tfjs stores tensors in float16 textures when
// WEBGL_RENDER_FLOAT32_CAPABLE is false (or WEBGL_FORCE_F16_TEXTURES is set), which
// loses ~3 decimal digits. The page sets WEBGL_FORCE_F16_TEXTURES=false and refuses to
// run when the context cannot render to float32 textures or is not WebGL 2.
'use strict';

const childProcess = require('child_process');
const fs = require('fs');
const http = require('http');
const os = require('os');
const path = require('path');

const PAGE_SCRIPT = path.join(__dirname, 'tfjs_browser_page.js');
const DEFAULT_TIMEOUT_MS = 300000;

// Chromium flags: headless WebGL 2 on the SwiftShader CPU rasterizer (no GPU needed,
// same results on every machine kind), and nothing that reaches the network.
function chromiumArgs(profile, url) {
  return [
    '--headless=new',
    '--no-sandbox',
    '--use-angle=swiftshader',
    '--enable-unsafe-swiftshader',
    '--disable-dev-shm-usage',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-default-apps',
    '--disable-extensions',
    '--disable-sync',
    '--no-first-run',
    '--no-default-browser-check',
    `--user-data-dir=${profile}`,
    url,
  ];
}

const PAGE_HTML = `<!doctype html>
<html><head><meta charset="utf-8"><title>tfjs webgl runner</title></head>
<body><script src="/tf.min.js"></script><script src="/page.js"></script></body></html>
`;

class Browser {
  /**
   * @param {{chromium: string, tfjsScript: string, timeoutMs?: number, log?: (s: string) => void}} opts
   *   chromium: absolute path of the Chromium binary; tfjsScript: @tensorflow/tfjs/dist/tf.min.js.
   * Rejects when the page cannot run tfjs on webgl with float32 textures.
   */
  static async start(opts) {
    const browser = new Browser(opts);
    try {
      await browser._start();
    } catch (e) {
      await browser.close();
      throw e;
    }
    return browser;
  }

  constructor({
    chromium,
    tfjsScript,
    timeoutMs = DEFAULT_TIMEOUT_MS,
    log = (s) => process.stderr.write(s),
    forceF16 = false, // tests only: ask tfjs for float16 textures, which the page must refuse
  }) {
    this.forceF16 = forceF16;
    this.chromium = chromium;
    this.tfjsScript = tfjsScript;
    this.timeoutMs = timeoutMs;
    this.log = log;
    this.models = new Map(); // id -> directory
    this.modelIds = new Map(); // directory -> id
    this.jobs = []; // queued jobs not yet handed to the page
    this.pending = new Map(); // job id -> {resolve, reject, timer}
    this.poll = null; // the page's waiting GET /next response
    this.nextId = 1;
    this.dead = null;
    this.stderrTail = []; // Chromium's last stderr chunks, for error messages
  }

  async _start() {
    for (const [what, file] of [['chromium', this.chromium], ['tfjs browser build', this.tfjsScript]]) {
      if (!fs.existsSync(file)) throw new Error(`${what} not found at ${file}`);
    }
    this.server = http.createServer((req, res) => this._serve(req, res));
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', resolve);
    });
    const url = `http://127.0.0.1:${this.server.address().port}/${this.forceF16 ? '?force_f16=1' : ''}`;
    this.profile = fs.mkdtempSync(path.join(process.env.TEST_TMPDIR || os.tmpdir(), 'tfjs-chromium-'));
    // Chromium writes caches and crash reports under HOME/XDG dirs: keep them in the
    // throwaway profile (a Bazel test's HOME may be read-only).
    const env = { ...process.env, HOME: this.profile, XDG_CONFIG_HOME: this.profile, XDG_CACHE_HOME: this.profile };
    this.proc = childProcess.spawn(this.chromium, chromiumArgs(this.profile, url), {
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
      detached: true, // its own process group: close() ends the GPU and renderer processes too
    });
    // Chromium has its own process group, so a runner killed by a signal ends it first.
    const pid = this.proc.pid;
    process.once('exit', () => killGroup(pid, 'SIGKILL'));
    for (const [sig, code] of [['SIGTERM', 143], ['SIGINT', 130], ['SIGHUP', 129]]) {
      process.once(sig, () => process.exit(code));
    }
    this.proc.stderr.setEncoding('utf8');
    this.proc.stderr.on('data', (chunk) => {
      this.stderrTail.push(chunk);
      if (this.stderrTail.length > 50) this.stderrTail.shift();
    });
    this.proc.on('exit', (code, signal) => this._fail(`chromium exited (code ${code}, signal ${signal})`));
    this.proc.on('error', (e) => this._fail(`cannot start chromium: ${e.message}`));
    // The first job's answer says the page and the webgl backend are up.
    this.info = await this._submit({ cmd: 'info' });
    if (!this.info.ok) throw new Error(this.info.error);
  }

  _fail(why) {
    if (this.dead) return;
    this.dead = `${why}\n${this.stderrTail.join('').slice(-3000)}`;
    for (const { reject, timer } of this.pending.values()) {
      clearTimeout(timer);
      reject(new Error(this.dead));
    }
    this.pending.clear();
  }

  /** A URL prefix the page can load `dir`'s files from. */
  _modelUrl(dir) {
    let id = this.modelIds.get(dir);
    if (id == null) {
      id = String(this.modelIds.size + 1);
      this.modelIds.set(dir, id);
      this.models.set(id, dir);
    }
    return `/m/${id}/`;
  }

  _submit(job) {
    if (this.dead) return Promise.reject(new Error(this.dead));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`the browser gave no answer within ${this.timeoutMs / 1000} s`));
      }, this.timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.jobs.push({ ...job, id });
      this._dispatch();
    });
  }

  _dispatch() {
    if (this.poll && this.jobs.length) {
      const res = this.poll;
      this.poll = null;
      sendJson(res, 200, this.jobs.shift());
    }
  }

  /**
   * Run one model on webgl. `modelJson`: absolute path of model.json; `inputs`: harness
   * tensors ({name?, shape, dtype, b64 | strings}); `outputs`: graph output names or
   * null. Resolves to the page's answer ({ok, backend, outputs, ...} or {ok: false, error}).
   */
  run({ modelJson, kind, inputs, outputs = null }) {
    const st = fs.statSync(modelJson);
    const dir = path.dirname(modelJson);
    const url = this._modelUrl(dir) + encodeURIComponent(path.basename(modelJson));
    // The cache key changes when the file does, so a rewritten model is reloaded.
    const cacheKey = JSON.stringify([dir, st.mtimeMs, st.size, kind]);
    return this._submit({ cmd: 'run', url, cacheKey, kind, inputs, outputs });
  }

  /** Page-side control requests: {cmd: 'memory'} or {cmd: 'clear'}. */
  control(cmd) {
    return this._submit({ cmd });
  }

  _serve(req, res) {
    const url = new URL(req.url, 'http://127.0.0.1');
    const p = decodeURIComponent(url.pathname);
    if (req.method === 'GET' && p === '/') return send(res, 200, 'text/html', PAGE_HTML);
    if (req.method === 'GET' && p === '/tf.min.js') return sendFile(res, this.tfjsScript, 'text/javascript');
    if (req.method === 'GET' && p === '/page.js') return sendFile(res, PAGE_SCRIPT, 'text/javascript');
    if (req.method === 'GET' && p === '/favicon.ico') return send(res, 204, 'text/plain', '');
    if (req.method === 'GET' && p === '/next') {
      if (this.poll) sendJson(this.poll, 200, { cmd: 'wait' });
      this.poll = res;
      // Answer an idle poll now and then, so no proxy or socket timeout ends it.
      const timer = setTimeout(() => {
        if (this.poll === res) {
          this.poll = null;
          sendJson(res, 200, { cmd: 'wait' });
        }
      }, 30000);
      res.on('close', () => clearTimeout(timer));
      return this._dispatch();
    }
    const model = /^\/m\/(\d+)\/(.+)$/.exec(p);
    if (req.method === 'GET' && model && this.models.has(model[1])) {
      const dir = this.models.get(model[1]);
      const file = path.resolve(dir, model[2]);
      if (path.relative(dir, file).startsWith('..')) return send(res, 404, 'text/plain', 'not found');
      return sendFile(res, file, 'application/octet-stream');
    }
    if (req.method === 'POST' && (p === '/log' || p.startsWith('/result/'))) {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        send(res, 204, 'text/plain', '');
        if (p === '/log') return this.log(`[page] ${body}\n`);
        const id = Number(p.slice('/result/'.length));
        const job = this.pending.get(id);
        if (!job) return;
        this.pending.delete(id);
        clearTimeout(job.timer);
        try {
          job.resolve(JSON.parse(body));
        } catch (e) {
          job.reject(new Error(`unreadable answer from the page: ${e.message}`));
        }
      });
      return undefined;
    }
    return send(res, 404, 'text/plain', 'not found');
  }

  async close() {
    this._fail('browser closed');
    if (this.poll) sendJson(this.poll, 200, { cmd: 'wait' });
    if (this.proc && this.proc.exitCode == null && this.proc.signalCode == null) {
      const exited = new Promise((resolve) => this.proc.once('exit', resolve));
      killGroup(this.proc.pid, 'SIGTERM');
      const timer = setTimeout(() => killGroup(this.proc.pid, 'SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    if (this.proc) killGroup(this.proc.pid, 'SIGKILL'); // helpers that outlived the browser
    if (this.server) {
      this.server.closeAllConnections();
      await new Promise((resolve) => this.server.close(resolve));
    }
    if (this.profile) {
      try {
        fs.rmSync(this.profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
      } catch (e) {
        this.log(`warning: could not remove the Chromium profile ${this.profile}: ${e.message}\n`);
      }
    }
  }
}

function killGroup(pid, signal) {
  try {
    process.kill(-pid, signal);
  } catch (e) {
    if (e.code !== 'ESRCH') throw e;
  }
}

function send(res, status, type, body) {
  res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' });
  res.end(body);
}

function sendJson(res, status, value) {
  send(res, status, 'application/json', JSON.stringify(value));
}

function sendFile(res, file, type) {
  fs.readFile(file, (err, data) => (err ? send(res, 404, 'text/plain', 'not found') : send(res, 200, type, data)));
}

module.exports = { Browser };
