#!/usr/bin/env node
// tfjs_model_test's test program: load a converted model in @tensorflow/tfjs on each
// requested backend, run it on the given inputs and compare with the expected outputs.
//
//   node tfjs_model_test_runner.js --model DIR/model.json --kind graph|layers
//       --inputs inputs.json --expected expected.json
//       --backends cpu,wasm,webgl --atol A1,A2,A3 --rtol R1,R2,R3 [--chromium /usr/bin/chromium]
//
// cpu and wasm run in this Node process; webgl runs in headless Chromium (tfjs_browser.js:
// WebGL 2 through SwiftShader, float32 textures required). --atol/--rtol give one
// tolerance per backend, in --backends order.
// inputs.json:   {"inputs":  [{"name"?, "shape": [..], "dtype": "float32"|"int32"|"bool"|"string", "data": [flat]}]}
// expected.json: {"outputs": [{"name"?, "shape": [..], "dtype"?, "data": [flat]}]}
// Outputs are matched by name when every expected output has one (graph models), else
// by position. A value passes when |got - want| <= atol + rtol * |want| (numpy's rule).
// Exit 0 when every backend matches, 1 on a mismatch or any error; the report goes to stdout.
'use strict';

const fs = require('fs');
const path = require('path');

const BACKENDS = ['cpu', 'wasm', 'webgl'];
const TYPED = { float32: Float32Array, int32: Int32Array, bool: Uint8Array };

function parseArgs(argv) {
  const args = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || i + 1 >= argv.length) throw new Error(`bad argument ${argv[i]}`);
    args[argv[i].slice(2)] = argv[i + 1];
  }
  for (const key of ['model', 'kind', 'inputs', 'expected', 'atol', 'rtol', 'backends']) {
    if (args[key] == null) throw new Error(`missing --${key}`);
  }
  args.backends = args.backends.split(',');
  for (const b of args.backends) {
    if (!BACKENDS.includes(b)) throw new Error(`unknown backend ${b}; choose from ${BACKENDS.join(', ')}`);
  }
  for (const key of ['atol', 'rtol']) {
    const values = args[key].split(',').map(Number);
    if (values.length !== args.backends.length || !values.every((v) => Number.isFinite(v) && v >= 0)) {
      throw new Error(`--${key} must be one number >= 0 per backend, got ${args[key]}`);
    }
    args[key] = values;
  }
  if (args.backends.includes('webgl') && !args.chromium) throw new Error('webgl needs --chromium');
  return args;
}

function fileHandler(tf, modelJsonPath) {
  const dir = path.dirname(modelJsonPath);
  return {
    load: async () => {
      const modelJSON = JSON.parse(fs.readFileSync(modelJsonPath, 'utf8'));
      return tf.io.getModelArtifactsForJSON(modelJSON, async (manifest) => {
        const specs = [];
        const buffers = [];
        for (const group of manifest) {
          for (const p of group.paths) buffers.push(fs.readFileSync(path.resolve(dir, p)));
          specs.push(...group.weights);
        }
        const all = Buffer.concat(buffers);
        return [specs, all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength)];
      });
    },
  };
}

function checkSpec(spec) {
  if (!Array.isArray(spec.shape) || !Array.isArray(spec.data)) throw new Error('each input needs "shape" and "data"');
}

/** Outputs of the model on cpu or wasm, in this process: [{name, shape, values}]. */
async function predictInNode(tf, args, backend, inputSpecs, expected) {
  if (backend === 'wasm') {
    const wasm = require('@tensorflow/tfjs-backend-wasm');
    wasm.setWasmPaths(path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + path.sep);
  }
  if (!(await tf.setBackend(backend))) throw new Error(`backend ${backend} failed to initialize`);
  await tf.ready();
  const handler = fileHandler(tf, args.model);
  const model = args.kind === 'graph' ? await tf.loadGraphModel(handler) : await tf.loadLayersModel(handler);
  const tensors = inputSpecs.map((s) => {
    checkSpec(s);
    return tf.tensor(s.data, s.shape, s.dtype || 'float32');
  });
  const named = inputSpecs.every((s) => s.name != null);
  let outputs;
  let names;
  if (args.kind === 'graph') {
    const feed = named ? Object.fromEntries(inputSpecs.map((s, i) => [s.name, tensors[i]])) : tensors;
    names = expected.every((o) => o.name != null) ? expected.map((o) => o.name) : model.outputNodes;
    const result = await model.executeAsync(feed, names);
    outputs = result instanceof tf.Tensor ? [result] : result;
  } else {
    const result = model.predict(tensors.length === 1 ? tensors[0] : tensors);
    outputs = Array.isArray(result) ? result : [result];
    names = outputs.map((t, i) => (model.outputNames && model.outputNames[i]) || `output_${i}`);
  }
  const got = [];
  for (let i = 0; i < outputs.length; i++) {
    got.push({ name: names[i], shape: outputs[i].shape, values: Array.from(await outputs[i].data()) });
  }
  tf.dispose([...tensors, ...outputs]);
  model.dispose();
  return { outputs: got, about: `${tf.getBackend()} backend` };
}

/** The harness protocol's tensor: flat values as base64 little-endian bytes. */
function toWire(spec) {
  checkSpec(spec);
  const dtype = spec.dtype || 'float32';
  const wire = { shape: spec.shape, dtype };
  if (spec.name != null) wire.name = spec.name;
  if (dtype === 'string') {
    wire.strings = spec.data.map((v) => Buffer.from(String(v), 'utf8').toString('base64'));
    return wire;
  }
  const Typed = TYPED[dtype];
  if (!Typed) throw new Error(`unsupported input dtype ${JSON.stringify(dtype)}`);
  const values = Typed.from(spec.data, (v) => Number(v));
  wire.b64 = Buffer.from(values.buffer, values.byteOffset, values.byteLength).toString('base64');
  return wire;
}

function fromWire(out) {
  if (out.dtype === 'string') return out.strings.map((s) => Buffer.from(s, 'base64').toString('utf8'));
  const bytes = new Uint8Array(Buffer.from(out.b64, 'base64'));
  const Typed = TYPED[out.dtype];
  if (!Typed) throw new Error(`unsupported output dtype ${out.dtype}`);
  return Array.from(new Typed(bytes.buffer, 0, bytes.byteLength / Typed.BYTES_PER_ELEMENT));
}

/** Outputs of the model on webgl in headless Chromium. */
async function predictInBrowser(tf, args, inputSpecs, expected) {
  const { Browser } = require('./tfjs_browser.js');
  const tfjsScript = path.join(path.dirname(require.resolve('@tensorflow/tfjs/package.json')), 'dist', 'tf.min.js');
  const browser = await Browser.start({ chromium: args.chromium, tfjsScript });
  try {
    const names = args.kind === 'graph' && expected.every((o) => o.name != null) ? expected.map((o) => o.name) : null;
    const answer = await browser.run({
      modelJson: args.model,
      kind: args.kind,
      inputs: inputSpecs.map(toWire),
      outputs: names,
    });
    if (!answer.ok) throw new Error(answer.error);
    if (answer.backend !== 'webgl') throw new Error(`the page ran on ${answer.backend}, not webgl`);
    const outputs = answer.outputs.map((o) => ({ name: o.name, shape: o.shape, values: fromWire(o) }));
    const i = browser.info;
    const about = `webgl backend, WebGL ${i.webglVersion}, float32 textures ` +
                  `(WEBGL_RENDER_FLOAT32_CAPABLE=${i.float32Capable}), ${i.renderer}`;
    return { outputs, about };
  } finally {
    await browser.close();
  }
}

function compare(backend, got, expected, atol, rtol) {
  if (got.length !== expected.length) {
    console.log(`FAIL [${backend}] the model gives ${got.length} outputs, ${expected.length} expected`);
    return false;
  }
  let ok = true;
  for (let i = 0; i < got.length; i++) {
    const want = expected[i];
    const label = want.name || got[i].name;
    if (JSON.stringify(got[i].shape) !== JSON.stringify(want.shape)) {
      console.log(`FAIL [${backend}] ${label}: shape ${JSON.stringify(got[i].shape)}, expected ${JSON.stringify(want.shape)}`);
      ok = false;
      continue;
    }
    const values = got[i].values;
    let maxDiff = 0;
    let bad = 0;
    for (let j = 0; j < values.length; j++) {
      const w = Number(want.data[j]);
      const d = Math.abs(Number(values[j]) - w);
      if (!(d <= atol + rtol * Math.abs(w))) bad++;
      if (d > maxDiff || Number.isNaN(d)) maxDiff = d;
    }
    console.log(`${bad ? 'FAIL' : 'ok'} [${backend}] ${label}: shape ${JSON.stringify(got[i].shape)}, ` +
                `max |tfjs - expected| = ${maxDiff.toExponential(2)}, ${bad} of ${values.length} values ` +
                `outside atol=${atol} rtol=${rtol}`);
    if (bad) ok = false;
  }
  return ok;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const tf = require('@tensorflow/tfjs');
  const inputSpecs = JSON.parse(fs.readFileSync(args.inputs, 'utf8')).inputs;
  const expected = JSON.parse(fs.readFileSync(args.expected, 'utf8')).outputs;
  let allOk = true;
  for (let k = 0; k < args.backends.length; k++) {
    const backend = args.backends[k];
    let ok;
    try {
      const result = backend === 'webgl'
        ? await predictInBrowser(tf, args, inputSpecs, expected)
        : await predictInNode(tf, args, backend, inputSpecs, expected);
      ok = compare(backend, result.outputs, expected, args.atol[k], args.rtol[k]);
      console.log(`${ok ? 'PASS' : 'FAIL'} [${backend}]: ${args.model} on @tensorflow/tfjs ${tf.version.tfjs} (${result.about})`);
    } catch (e) {
      ok = false;
      console.log(`FAIL [${backend}]: ${(e && e.message) || e}`);
    }
    allOk = allOk && ok;
  }
  return allOk ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.log(`FAIL: ${(e && e.message) || e}`);
    process.exit(1);
  },
);
