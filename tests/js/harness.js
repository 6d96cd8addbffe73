#!/usr/bin/env node
// Runs converted models in the real TensorFlow.js 4.22 runtime for the Python tests.
//
// Protocol: one JSON request per line on stdin, one JSON answer per line on stdout.
//   request:  {"id", "model": "/abs/dir/model.json", "kind": "graph"|"layers",
//              "backend": "cpu"|"wasm", "inputs": [{"name"?, "shape", "dtype",
//              "data": [...] | "b64": "<little-endian bytes>"}], "outputs"?: [names],
//              "timeit"?: N}
//   answer:   {"id", "ok": true, "backend", "outputs": [{"name", "shape", "dtype", "b64"}],
//              "timeit_ms"?: median}  or  {"id", "ok": false, "error": "..."}
// String inputs/outputs carry "strings": [base64 of each element] instead of "b64".
// Control requests: {"id", "cmd": "memory"} -> {"id", "ok", "memory": tf.memory()};
// {"id", "cmd": "clear"} disposes every cached model.
// Anything tfjs itself prints goes to stderr so stdout stays a clean channel.
'use strict';

const fs = require('fs');
const path = require('path');
const readline = require('readline');

// Keep stdout for answers only: tfjs logs ("Hi there", kernel warnings) go to stderr.
const answerStream = process.stdout;
for (const level of ['log', 'info', 'warn', 'debug']) {
  console[level] = (...args) => process.stderr.write(args.map(String).join(' ') + '\n');
}

const tf = require('@tensorflow/tfjs');
const wasm = require('@tensorflow/tfjs-backend-wasm');

// Local wasm binaries only: no network, same files on every machine.
wasm.setWasmPaths(path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + path.sep);

const BACKENDS = new Set(['cpu', 'wasm']);
const MAX_CACHED_MODELS = 8;
const TYPED = {
  float32: Float32Array,
  int32: Int32Array,
  bool: Uint8Array,
  complex64: Float32Array,
};

/** A tf.io handler that reads model.json and its shards from disk. */
function fileHandler(modelJsonPath) {
  const dir = path.dirname(modelJsonPath);
  return {
    load: async () => {
      let modelJSON;
      try {
        modelJSON = JSON.parse(fs.readFileSync(modelJsonPath, 'utf8'));
      } catch (e) {
        throw new Error(`cannot read ${modelJsonPath}: ${e.message}`);
      }
      return tf.io.getModelArtifactsForJSON(modelJSON, async (manifest) => {
        const specs = [];
        const buffers = [];
        for (const group of manifest) {
          for (const p of group.paths) {
            const file = path.resolve(dir, p);
            if (path.relative(dir, file).startsWith('..') || path.isAbsolute(p)) {
              throw new Error(`weight path escapes the model directory: ${p}`);
            }
            buffers.push(fs.readFileSync(file));
          }
          specs.push(...group.weights);
        }
        const all = Buffer.concat(buffers);
        // A standalone ArrayBuffer: Buffer.concat may share a larger pool.
        return [specs, all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength)];
      });
    },
  };
}

// (path, mtime, size, kind, backend) -> model, least recently used first.
const cache = new Map();

async function getModel(modelPath, kind, backend) {
  const st = fs.statSync(modelPath);
  const key = JSON.stringify([modelPath, st.mtimeMs, st.size, kind, backend]);
  if (cache.has(key)) {
    const model = cache.get(key);
    cache.delete(key);
    cache.set(key, model);
    return model;
  }
  const handler = fileHandler(modelPath);
  let model;
  if (kind === 'graph') model = await tf.loadGraphModel(handler);
  else if (kind === 'layers') model = await tf.loadLayersModel(handler);
  else throw new Error(`unknown kind ${JSON.stringify(kind)} (expected "graph" or "layers")`);
  cache.set(key, model);
  while (cache.size > MAX_CACHED_MODELS) {
    const [oldKey, old] = cache.entries().next().value;
    cache.delete(oldKey);
    old.dispose();
  }
  return model;
}

function decodeInput(spec) {
  const dtype = spec.dtype || 'float32';
  const shape = spec.shape;
  if (!Array.isArray(shape)) throw new Error('every input needs a "shape" list');
  if (dtype === 'string') {
    const values = spec.strings
      ? spec.strings.map((s) => new Uint8Array(Buffer.from(s, 'base64')))
      : spec.data;
    return tf.tensor(values, shape, 'string');
  }
  const Typed = TYPED[dtype];
  if (!Typed) throw new Error(`unsupported input dtype ${JSON.stringify(dtype)}`);
  if (spec.b64 != null) {
    const bytes = Buffer.from(spec.b64, 'base64');
    if (bytes.byteLength % Typed.BYTES_PER_ELEMENT !== 0) {
      throw new Error(`input byte length ${bytes.byteLength} is not a multiple of ${dtype} size`);
    }
    const copy = new Uint8Array(bytes); // aligned copy
    const values = new Typed(copy.buffer, 0, copy.byteLength / Typed.BYTES_PER_ELEMENT);
    if (dtype === 'complex64') {
      const re = values.filter((_, i) => i % 2 === 0);
      const im = values.filter((_, i) => i % 2 === 1);
      return tf.complex(tf.tensor(re, shape), tf.tensor(im, shape));
    }
    return tf.tensor(dtype === 'bool' ? Array.from(values, Boolean) : values, shape, dtype);
  }
  if (spec.data == null) throw new Error('every input needs "data" or "b64"');
  return tf.tensor(spec.data, shape, dtype);
}

async function encodeOutput(name, t) {
  const out = { name, shape: t.shape, dtype: t.dtype };
  const values = await t.data();
  if (t.dtype === 'string') {
    out.strings = values.map((v) => Buffer.from(v).toString('base64'));
  } else if (t.dtype === 'bool') {
    out.b64 = Buffer.from(Uint8Array.from(values, (v) => (v ? 1 : 0))).toString('base64');
  } else {
    out.b64 = Buffer.from(values.buffer, values.byteOffset, values.byteLength).toString('base64');
  }
  return out;
}

/** Input/output layer names; a Sequential model leaves inputNames/outputNames empty. */
function layerNames(model, which) {
  const names = which === 'inputs' ? model.inputNames : model.outputNames;
  if (names && names.length) return names;
  return model[which].map((t) => (t.sourceLayer ? t.sourceLayer.name : t.name));
}

function asList(result) {
  if (result instanceof tf.Tensor) return [result];
  if (Array.isArray(result)) return result;
  // Graph models with structured outputs may give a name -> tensor map.
  return Object.keys(result).map((k) => result[k]);
}

async function runOnce(model, kind, inputs, outputNames) {
  if (kind === 'graph') return asList(await model.executeAsync(inputs, outputNames));
  return asList(model.predict(inputs));
}

async function control(req) {
  if (req.cmd === 'memory') return { id: req.id, ok: true, backend: tf.getBackend(), memory: tf.memory() };
  if (req.cmd === 'clear') {
    for (const model of cache.values()) model.dispose();
    cache.clear();
    return { id: req.id, ok: true };
  }
  throw new Error(`unknown cmd ${JSON.stringify(req.cmd)}`);
}

async function handle(req) {
  if (req.cmd != null) return control(req);
  const backend = req.backend || 'cpu';
  if (!BACKENDS.has(backend)) throw new Error(`unknown backend ${JSON.stringify(backend)}`);
  if (tf.getBackend() !== backend) {
    if (!(await tf.setBackend(backend))) throw new Error(`backend ${backend} failed to initialize`);
  }
  await tf.ready();
  if (typeof req.model !== 'string' || !path.isAbsolute(req.model)) {
    throw new Error('"model" must be an absolute path to model.json');
  }
  const kind = req.kind;
  const model = await getModel(req.model, kind, backend);
  const specs = req.inputs || [];
  const tensors = specs.map(decodeInput);
  try {
    const named = specs.length > 0 && specs.every((s) => s.name != null);
    let inputs;
    if (kind === 'graph') {
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
    const outputNames = kind === 'graph' ? (req.outputs || model.outputNodes) : layerNames(model, 'outputs');
    if (kind === 'layers' && req.outputs) throw new Error('"outputs" is only supported for graph models');

    let result = await runOnce(model, kind, inputs, outputNames);
    const answer = { id: req.id, ok: true, backend: tf.getBackend() };
    const n = Number(req.timeit || 0);
    if (n > 0) {
      const times = [];
      for (let i = 0; i < n; i++) {
        tf.dispose(result);
        const t0 = process.hrtime.bigint();
        result = await runOnce(model, kind, inputs, outputNames);
        await Promise.all(result.map((t) => t.data()));
        times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      times.sort((a, b) => a - b);
      const mid = Math.floor(n / 2);
      answer.timeit_ms = n % 2 ? times[mid] : (times[mid - 1] + times[mid]) / 2;
    }
    try {
      answer.outputs = await Promise.all(result.map((t, i) => encodeOutput(outputNames[i] ?? `output_${i}`, t)));
    } finally {
      tf.dispose(result);
    }
    return answer;
  } finally {
    tf.dispose(tensors);
  }
}

function send(obj) {
  answerStream.write(JSON.stringify(obj) + '\n');
}

async function main() {
  // wasm registers with the higher priority; start on cpu so control commands and
  // requests without "backend" see the same, predictable backend.
  await tf.setBackend('cpu');
  await tf.ready();
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  // Requests run one at a time, in order: the backend is global state.
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
      send(await handle(req));
    } catch (e) {
      send({ id: req.id ?? null, ok: false, error: String((e && e.message) || e) });
    }
  }
}

main().catch((e) => {
  process.stderr.write(`harness crashed: ${(e && e.stack) || e}\n`);
  process.exit(1);
});
