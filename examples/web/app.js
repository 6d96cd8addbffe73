// Loads the model named in the query string, runs one prediction and publishes the
// result on the page and in window.__result (read by tests/js/browser_check.js).
'use strict';

/** Default input when none is given: a fixed ramp in [-1, 1], so runs are comparable. */
function defaultInput(shape) {
  const dims = shape.map((d) => (d == null || d < 0 ? 1 : d));
  const size = dims.reduce((a, b) => a * b, 1);
  const values = Array.from({ length: size }, (_, i) => ((i % 17) - 8) / 8);
  return tf.tensor(values, dims, 'float32');
}

/** Rows of a batch-first tensor, one per line, 6 significant digits (display only). */
function formatRows(values, shape) {
  const rowLen = shape.length > 1 ? shape.slice(1).reduce((a, b) => a * b, 1) : values.length;
  const lines = [];
  for (let i = 0; i < values.length; i += rowLen) {
    lines.push(Array.from(values.slice(i, i + rowLen), (v) => Number(v).toPrecision(6)).join('  '));
  }
  return lines.join('\n');
}

function show(id, text) {
  document.getElementById(id).textContent = text;
}

async function run() {
  const params = new URLSearchParams(window.location.search);
  const modelUrl = params.get('model') || 'model/model.json';
  const backend = params.get('backend') || 'cpu';
  show('model', modelUrl);
  if (!(await tf.setBackend(backend))) throw new Error(`backend ${backend} is not available`);
  await tf.ready();
  show('backend', tf.getBackend());

  // The format field tells which loader applies; layers models may omit it.
  const response = await fetch(modelUrl);
  if (!response.ok) throw new Error(`GET ${modelUrl}: HTTP ${response.status}`);
  const kind = (await response.json()).format === 'graph-model' ? 'graph' : 'layers';
  show('kind', kind);
  const model = kind === 'graph' ? await tf.loadGraphModel(modelUrl) : await tf.loadLayersModel(modelUrl);

  const inputShape = model.inputs[0].shape;
  const given = params.get('input');
  const x = given ? tf.tensor(JSON.parse(given), undefined, 'float32') : defaultInput(inputShape || [1]);
  show('input', `shape [${x.shape}]\n${formatRows(await x.data(), x.shape)}`);

  const t0 = performance.now();
  let y = kind === 'graph' ? await model.executeAsync(x) : model.predict(x);
  const ys = y instanceof tf.Tensor ? [y] : Array.isArray(y) ? y : Object.values(y);
  const names = kind === 'graph' ? model.outputNodes : model.outputNames;
  const outputs = [];
  for (let i = 0; i < ys.length; i++) {
    outputs.push({ name: names[i], shape: ys[i].shape, dtype: ys[i].dtype, data: Array.from(await ys[i].data()) });
  }
  const ms = performance.now() - t0;
  const inputShapeUsed = x.shape;
  tf.dispose([x, ...ys]);
  show('output', outputs.map((o) => `${o.name} [${o.shape}] ${o.dtype}\n${formatRows(o.data, o.shape)}`).join('\n\n'));
  return { ok: true, kind, backend: tf.getBackend(), inputShape: inputShapeUsed, outputs, ms };
}

run().then(
  (result) => {
    const status = document.getElementById('status');
    status.textContent = `ok (${result.ms.toFixed(1)} ms)`;
    status.className = 'ok';
    window.__result = result;
  },
  (err) => {
    const status = document.getElementById('status');
    status.textContent = `error: ${err && err.message ? err.message : err}`;
    status.className = 'error';
    window.__result = { ok: false, error: String(err && err.message ? err.message : err) };
  },
);
