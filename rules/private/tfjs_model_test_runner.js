#!/usr/bin/env node
// tfjs_model_test's test program: load a converted model in @tensorflow/tfjs, run it on
// the given inputs and compare with the expected outputs.
//
//   node tfjs_model_test_runner.js --model DIR/model.json --kind graph|layers
//       --inputs inputs.json --expected expected.json --atol A --rtol R --backend cpu|wasm
//
// inputs.json:   {"inputs":  [{"name"?, "shape": [..], "dtype": "float32"|"int32"|"bool"|"string", "data": [flat]}]}
// expected.json: {"outputs": [{"name"?, "shape": [..], "dtype"?, "data": [flat]}]}
// Outputs are matched by name when every expected output has one (graph models), else
// by position. A value passes when |got - want| <= atol + rtol * |want| (numpy's rule).
// Exit 0 on a match, 1 on a mismatch or any error; the report goes to stdout.
'use strict';

const fs = require('fs');
const path = require('path');

function parseArgs(argv) {
  const args = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || i + 1 >= argv.length) throw new Error(`bad argument ${argv[i]}`);
    args[argv[i].slice(2)] = argv[i + 1];
  }
  for (const key of ['model', 'kind', 'inputs', 'expected', 'atol', 'rtol', 'backend']) {
    if (args[key] == null) throw new Error(`missing --${key}`);
  }
  for (const key of ['atol', 'rtol']) {
    const v = Number(args[key]);
    if (!Number.isFinite(v) || v < 0) throw new Error(`--${key} must be a number >= 0, got ${args[key]}`);
    args[key] = v;
  }
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

function toTensor(tf, spec) {
  const dtype = spec.dtype || 'float32';
  if (!Array.isArray(spec.shape) || !Array.isArray(spec.data)) throw new Error('each input needs "shape" and "data"');
  return tf.tensor(spec.data, spec.shape, dtype);
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const tf = require('@tensorflow/tfjs');
  if (args.backend === 'wasm') {
    const wasm = require('@tensorflow/tfjs-backend-wasm');
    wasm.setWasmPaths(path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + path.sep);
  }
  if (!(await tf.setBackend(args.backend))) throw new Error(`backend ${args.backend} failed to initialize`);
  await tf.ready();

  const handler = fileHandler(tf, args.model);
  const model = args.kind === 'graph' ? await tf.loadGraphModel(handler) : await tf.loadLayersModel(handler);
  const inputSpecs = JSON.parse(fs.readFileSync(args.inputs, 'utf8')).inputs;
  const expected = JSON.parse(fs.readFileSync(args.expected, 'utf8')).outputs;
  const tensors = inputSpecs.map((s) => toTensor(tf, s));
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
    names = outputs.map((_, i) => `output_${i}`);
  }
  if (outputs.length !== expected.length) {
    throw new Error(`the model gives ${outputs.length} outputs, ${expected.length} expected`);
  }

  let ok = true;
  for (let i = 0; i < outputs.length; i++) {
    const got = outputs[i];
    const want = expected[i];
    const label = want.name || names[i];
    if (JSON.stringify(got.shape) !== JSON.stringify(want.shape)) {
      console.log(`FAIL ${label}: shape ${JSON.stringify(got.shape)}, expected ${JSON.stringify(want.shape)}`);
      ok = false;
      continue;
    }
    const values = await got.data();
    let maxDiff = 0;
    let bad = 0;
    for (let j = 0; j < values.length; j++) {
      const w = Number(want.data[j]);
      const d = Math.abs(Number(values[j]) - w);
      if (!(d <= args.atol + args.rtol * Math.abs(w))) bad++;
      if (d > maxDiff || Number.isNaN(d)) maxDiff = d;
    }
    console.log(`${bad ? 'FAIL' : 'ok'} ${label}: shape ${JSON.stringify(got.shape)}, max |tfjs - expected| = ` +
                `${maxDiff.toExponential(2)}, ${bad} of ${values.length} values outside atol=${args.atol} rtol=${args.rtol}`);
    if (bad) ok = false;
  }
  console.log(`${ok ? 'PASS' : 'FAIL'}: ${args.model} on @tensorflow/tfjs ${tf.version.tfjs} (${tf.getBackend()} backend)`);
  return ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.log(`FAIL: ${(e && e.message) || e}`);
    process.exit(1);
  },
);
