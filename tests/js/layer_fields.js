#!/usr/bin/env node
// Prints converter/tfjsconv/data/tfjs_layers_fields.json: for every layer class the
// installed @tensorflow/tfjs registers, the config fields (camelCase, as the loader
// sees them after converting Keras's snake_case) that tfjs-layers accepts.
//
// "Accepts" = what the class writes in getConfig() (tfjs reads back what it writes) --
// also for fields written only when set (the constructor's reads, seen through a Proxy,
// are each tried with a value) -- plus what the base Layer constructor reads
// (inputShape, batchInputShape, ...), plus READ_AND_USED. A field the constructor reads
// but does not write back is not accepted: Conv2DTranspose reads dilationRate and
// ignores it; SeparableConv2D reads kernelInitializer only to throw ("Fields ... are
// invalid for SeparableConv2D").
//
// "reads" lists, per class, the keys its constructor reads without accepting them (it
// throws on them, or reads and ignores them): the converter must drop those when they do
// not matter; "*" when it copies its whole config. A key the constructor never reads is
// never looked at, so it may stay (as the reference converter writes it).
//
//   node tests/js/layer_fields.js > converter/tfjsconv/data/tfjs_layers_fields.json
// tests/python/test_layers_fields.py checks the shipped file equals this output.
'use strict';

for (const level of ['log', 'info', 'warn', 'debug']) {
  console[level] = (...args) => process.stderr.write(args.map(String).join(' ') + '\n');
}
const tf = require('@tensorflow/tfjs');

// Constructor arguments that some class requires; every class gets the ones it reads.
function sampleArgs() {
  return {
    units: 2, filters: 2, kernelSize: 3, inputDim: 3, outputDim: 2, targetShape: [2],
    dims: [1], n: 2, height: 2, width: 2, scale: 1, numTokens: 2, factor: 0.5, rate: 0.5,
    batchInputShape: [null, 4], stddev: 0.1, poolSize: 2, cropping: [[1, 1], [1, 1]],
    // Nested layers as the loader passes them to fromConfig: serialized.
    cell: {className: 'SimpleRNNCell', config: {units: 2}},
    cells: [{className: 'SimpleRNNCell', config: {units: 2}}],
    layer: {className: 'LSTM', config: {units: 2}},
  };
}

// A key no class knows: a constructor that reads it copies its whole config (a spread).
const SENTINEL = 'probeKeyNoClassKnows';

// Keys the constructor (via fromConfig) reads from its config; ['*'] when it reads them all.
function readKeys(name, cls, fromConfig, args) {
  const read = new Set();
  const proxy = new Proxy({...args, [SENTINEL]: 1}, {get: (target, key) => {
    if (typeof key === 'string') read.add(key);
    return target[key];
  }});
  fromConfig(cls, proxy);
  return read.has(SENTINEL) ? new Set(['*']) : read;
}

// Read, used in build/call, but missing from getConfig (tfjs-layers 4.22
// convolutional.ts SeparableConv); tests/python/test_layers_fields.py runs a
// depth_multiplier=2 model in tfjs against Keras.
const READ_AND_USED = {SeparableConv2D: ['depthMultiplier']};

// A plausible non-null value for a probed field.
function probeValue(key) {
  if (key.endsWith('Initializer')) return {className: 'Zeros', config: {}};
  if (key.endsWith('Regularizer')) return {className: 'L1L2', config: {l1: 0, l2: 0}};
  if (key.endsWith('Constraint')) return {className: 'NonNeg', config: {}};
  return 1;
}

function constructs(cls, fromConfig, args) {
  try {
    return fromConfig(cls, args);
  } catch (e) {
    return null;
  }
}

// Keys the base Layer constructor reads, whatever the class writes.
function baseLayerKeys() {
  const read = new Set();
  const proxy = new Proxy({name: 'probe', inputShape: [2]}, {get: (target, key) => {
    if (typeof key === 'string') read.add(key);
    return target[key];
  }});
  new tf.layers.Layer(proxy);
  return read;
}

function main() {
  const map = tf.serialization.SerializationMap.getMap().classNameMap;
  const base = baseLayerKeys();
  const fields = {};
  const reads = {};
  const containers = new Set(['Sequential', 'Functional', 'Model']);
  for (const name of Object.keys(map).sort()) {
    const cls = map[name][0];
    if (!(cls.prototype instanceof tf.layers.Layer) || containers.has(name)) continue;
    let layer;
    try {
      layer = map[name][1](cls, sampleArgs());
    } catch (e) {
      throw new Error(`cannot construct ${name} from the sample arguments: ${e.message}`);
    }
    const keys = new Set([...Object.keys(layer.getConfig()), ...base]);
    const read = readKeys(name, cls, map[name][1], sampleArgs());
    for (const key of read) {
      if (keys.has(key) || key === '*') continue;
      const probed = constructs(cls, map[name][1], {...sampleArgs(), [key]: probeValue(key)});
      if (probed && key in probed.getConfig()) keys.add(key);
    }
    for (const key of READ_AND_USED[name] || []) keys.add(key);
    fields[name] = [...keys].sort();
    const unaccepted = [...read].filter((key) => !keys.has(key)).sort();
    if (unaccepted.length) reads[name] = unaccepted;
  }
  const out = {
    _comment: 'Config fields (camelCase) that each layer class of @tensorflow/tfjs accepts: its own ' +
        'getConfig() keys plus what the base Layer constructor reads; "reads": keys a constructor reads ' +
        'without accepting them ("*": all, it copies its config). Generated by ' +
        'tests/js/layer_fields.js; tests/python/test_layers_fields.py checks it against the installed runtime.',
    tfjs_version: tf.version.tfjs,
    fields,
    reads,
  };
  process.stdout.write(JSON.stringify(out, null, 1) + '\n');
}

main();
