// The page side of tfjs_browser.js: sets up tfjs' webgl backend (float32 textures, WebGL
// 2, or no run at all), then runs jobs it long-polls from the server until the page is
// closed. Tensors travel as the harness protocol's base64 little-endian bytes.
/* global tf */
'use strict';

(function () {
  const MAX_CACHED_MODELS = 4;
  const TYPED = { float32: Float32Array, int32: Int32Array, bool: Uint8Array };
  const cache = new Map(); // cacheKey -> model, least recently used first

  function post(path, value) {
    return fetch(path, { method: 'POST', body: typeof value === 'string' ? value : JSON.stringify(value) });
  }
  for (const level of ['log', 'info', 'warn', 'error']) {
    const orig = console[level].bind(console);
    console[level] = (...args) => {
      orig(...args);
      post('/log', `${level}: ${args.map(String).join(' ')}`).catch(() => {});
    };
  }
  window.addEventListener('error', (e) => post('/log', `uncaught: ${e.message}`).catch(() => {}));

  // tfjs picks float16 textures when the context cannot render to float32 ones; a model
  // checked that way would be checked at ~1e-3 precision without anyone noticing.
  async function setUp() {
    const forceF16 = new URLSearchParams(window.location.search).get('force_f16') === '1'; // tests only
    tf.env().set('WEBGL_FORCE_F16_TEXTURES', forceF16);
    if (!(await tf.setBackend('webgl'))) throw new Error('the webgl backend failed to initialize');
    await tf.ready();
    const env = tf.env();
    const info = {
      tfjs: tf.version.tfjs,
      backend: tf.getBackend(),
      webglVersion: env.getNumber('WEBGL_VERSION'),
      float32Capable: env.getBool('WEBGL_RENDER_FLOAT32_CAPABLE'),
      float32Enabled: env.getBool('WEBGL_RENDER_FLOAT32_ENABLED'),
      renderer: '',
    };
    const gl = tf.backend().gpgpu.gl;
    const dbg = gl.getExtension('WEBGL_debug_renderer_info');
    info.renderer = String(gl.getParameter(dbg ? dbg.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
    if (info.backend !== 'webgl') throw new Error(`tfjs runs on ${info.backend}, not webgl`);
    if (info.webglVersion !== 2) throw new Error(`WebGL ${info.webglVersion} context, WebGL 2 required`);
    if (!info.float32Capable) {
      throw new Error(`this WebGL context cannot render float32 textures (renderer ${info.renderer}); ` +
                      'tfjs would compute in float16');
    }
    if (!info.float32Enabled) throw new Error('WEBGL_FORCE_F16_TEXTURES is set: tfjs would compute in float16');
    return info;
  }

  function b64ToBytes(b64) {
    const s = atob(b64);
    const bytes = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) bytes[i] = s.charCodeAt(i);
    return bytes;
  }

  function bytesToB64(bytes) {
    let s = '';
    for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(s);
  }

  function decodeInput(spec) {
    const dtype = spec.dtype || 'float32';
    if (dtype === 'string') return tf.tensor(spec.strings.map(b64ToBytes), spec.shape, 'string');
    const Typed = TYPED[dtype];
    if (!Typed) throw new Error(`unsupported input dtype ${JSON.stringify(dtype)}`);
    const bytes = b64ToBytes(spec.b64);
    const values = new Typed(bytes.buffer, 0, bytes.byteLength / Typed.BYTES_PER_ELEMENT);
    return tf.tensor(dtype === 'bool' ? Array.from(values, Boolean) : values, spec.shape, dtype);
  }

  async function encodeOutput(name, t) {
    const out = { name, shape: t.shape, dtype: t.dtype };
    const values = await t.data();
    if (t.dtype === 'string') out.strings = values.map(bytesToB64);
    else if (t.dtype === 'bool') out.b64 = bytesToB64(Uint8Array.from(values, (v) => (v ? 1 : 0)));
    else out.b64 = bytesToB64(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
    return out;
  }

  async function getModel(job) {
    if (cache.has(job.cacheKey)) {
      const model = cache.get(job.cacheKey);
      cache.delete(job.cacheKey);
      cache.set(job.cacheKey, model);
      return model;
    }
    let model;
    // Read each file whole before tfjs sees it: tfjs 4.22 awaits every shard's response
    // before reading any body, and Chromium opens 6 HTTP/1.1 connections per host, so a
    // model of more than ~6 large shards (ConvNeXtTiny: 27 x 4 MB) never finished loading
    // from this page's server (seen here; the web package's loader reads whole files too).
    const fetchFunc = async (url, init) => {
      const response = await fetch(url, init);
      const body = await response.arrayBuffer();
      return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
    };
    if (job.kind === 'graph') model = await tf.loadGraphModel(job.url, { fetchFunc });
    else if (job.kind === 'layers') model = await tf.loadLayersModel(tf.io.http(job.url, { fetchFunc }));
    else throw new Error(`unknown kind ${JSON.stringify(job.kind)} (expected "graph" or "layers")`);
    cache.set(job.cacheKey, model);
    while (cache.size > MAX_CACHED_MODELS) {
      const [oldKey, old] = cache.entries().next().value;
      cache.delete(oldKey);
      old.dispose();
    }
    return model;
  }

  /** Input/output layer names; a Sequential model leaves inputNames/outputNames empty. */
  function layerNames(model, which) {
    const names = which === 'inputs' ? model.inputNames : model.outputNames;
    if (names && names.length) return names;
    return model[which].map((t) => (t.sourceLayer ? t.sourceLayer.name : t.name));
  }

  // Same feeding and naming rules as tests/js/harness.js: named inputs feed a graph
  // model by name and a layers model in its input order; unnamed ones go in order.
  async function run(job) {
    const model = await getModel(job);
    const specs = job.inputs || [];
    const tensors = specs.map(decodeInput);
    try {
      const named = specs.length > 0 && specs.every((s) => s.name != null);
      let inputs;
      if (job.kind === 'graph') {
        inputs = named ? Object.fromEntries(specs.map((s, i) => [s.name, tensors[i]])) : tensors;
      } else if (named) {
        const wanted = layerNames(model, 'inputs');
        inputs = wanted.map((n) => {
          const i = specs.findIndex((s) => s.name === n);
          if (i < 0) throw new Error(`missing input ${n}; the model takes ${wanted.join(', ')}`);
          return tensors[i];
        });
      } else {
        inputs = tensors.length === 1 ? tensors[0] : tensors;
      }
      if (job.kind === 'layers' && job.outputs) throw new Error('"outputs" is only supported for graph models');
      const names = job.kind === 'graph' ? job.outputs || model.outputNodes : layerNames(model, 'outputs');
      const result = job.kind === 'graph' ? await model.executeAsync(inputs, names) : model.predict(inputs);
      const list = result instanceof tf.Tensor ? [result] : Array.isArray(result) ? result : Object.values(result);
      try {
        const outputs = [];
        for (let i = 0; i < list.length; i++) outputs.push(await encodeOutput(names[i] ?? `output_${i}`, list[i]));
        return { ok: true, backend: tf.getBackend(), outputs };
      } finally {
        tf.dispose(list);
      }
    } finally {
      tf.dispose(tensors);
    }
  }

  async function handle(job, info) {
    if (job.cmd === 'info') return { ok: true, ...info };
    if (job.cmd === 'memory') return { ok: true, memory: tf.memory() };
    if (job.cmd === 'clear') {
      for (const model of cache.values()) model.dispose();
      cache.clear();
      return { ok: true };
    }
    if (job.cmd === 'run') return run(job);
    throw new Error(`unknown command ${JSON.stringify(job.cmd)}`);
  }

  async function loop() {
    let info = null;
    let setupError = null;
    try {
      info = await setUp();
    } catch (e) {
      setupError = (e && e.message) || String(e);
    }
    for (;;) {
      let job;
      try {
        job = await (await fetch('/next', { cache: 'no-store' })).json();
      } catch (e) {
        return; // the server is gone
      }
      if (job.cmd === 'wait') continue;
      let answer;
      try {
        if (setupError) throw new Error(setupError);
        answer = await handle(job, info);
      } catch (e) {
        answer = { ok: false, error: (e && e.message) || String(e) };
      }
      await post(`/result/${job.id}`, answer).catch(() => {});
    }
  }

  loop();
})();
