#!/usr/bin/env node
// Writes layers models exactly as TensorFlow.js 4.22's own `model.save()` does, for the
// tests of real tfjs-saved files: `node save_layers_model.js OUT_DIR`.
//
// tfjs-node's `file://` handler is not installed, so `model.save()` gets a
// tf.io.withSaveHandler that writes what the browser's `downloads://` handler writes:
// `model.json` (modelTopology, format, generatedBy, convertedBy, weightsManifest; the
// topology is the bare Sequential/Model config) and `model.weights.bin`, referenced as
// `./model.weights.bin`. Weights are seeded, so the same run writes the same bytes.
'use strict';

const fs = require('fs');
const path = require('path');

for (const level of ['log', 'info', 'warn', 'debug']) {
  console[level] = (...args) => process.stderr.write(args.map(String).join(' ') + '\n');
}
const tf = require('@tensorflow/tfjs');

/** A layer class Keras does not know: its model must be refused naming 'TimesTwo'. */
class TimesTwo extends tf.layers.Layer {
  static get className() {
    return 'TimesTwo';
  }
  call(inputs) {
    return tf.mul(Array.isArray(inputs) ? inputs[0] : inputs, 2);
  }
}
tf.serialization.registerClass(TimesTwo);

function seeded(name) {
  let seed = 0;
  for (const c of name) seed = (seed * 31 + c.charCodeAt(0)) % 100003;
  return tf.initializers.randomUniform({minval: -0.5, maxval: 0.5, seed});
}

function dense(name, units, extra = {}) {
  return tf.layers.dense({name, units, kernelInitializer: seeded(name), biasInitializer: seeded(name + 'b'), ...extra});
}

const MODELS = {
  // Sequential: the first layer carries the input shape, no InputLayer.
  sequential: () =>
    tf.sequential({
      name: 'seq',
      layers: [dense('hidden', 4, {inputShape: [3], activation: 'relu'}), dense('out', 2, {activation: 'softmax'})],
    }),
  // Functional with a convolution and two outputs.
  functional: () => {
    const x = tf.input({shape: [5, 5, 2], name: 'image'});
    const c = tf.layers
      .conv2d({name: 'conv', filters: 3, kernelSize: 3, activation: 'relu', kernelInitializer: seeded('conv'), biasInitializer: seeded('convb')})
      .apply(x);
    const f = tf.layers.flatten({name: 'flat'}).apply(c);
    const a = dense('head_a', 2).apply(f);
    const b = dense('head_b', 1, {activation: 'sigmoid'}).apply(f);
    return tf.model({name: 'func', inputs: x, outputs: [a, b]});
  },
  // Recurrent layers and the wrapper tfjs serializes its own way.
  recurrent: () =>
    tf.sequential({
      name: 'rec',
      layers: [
        tf.layers.embedding({name: 'emb', inputDim: 10, outputDim: 4, inputShape: [5], embeddingsInitializer: seeded('emb')}),
        tf.layers.bidirectional({
          name: 'bi',
          layer: tf.layers.lstm({units: 3, returnSequences: true, kernelInitializer: seeded('l'), recurrentInitializer: seeded('lr')}),
        }),
        tf.layers.gru({name: 'gru', units: 2, kernelInitializer: seeded('g'), recurrentInitializer: seeded('gr')}),
      ],
    }),
  // Separable/depthwise convolutions, batch norm, TimeDistributed.
  conv_zoo: () =>
    tf.sequential({
      name: 'cz',
      layers: [
        tf.layers.separableConv2d({
          name: 'sep',
          filters: 3,
          kernelSize: 3,
          inputShape: [6, 6, 2],
          depthwiseInitializer: seeded('s1'),
          pointwiseInitializer: seeded('s2'),
        }),
        tf.layers.batchNormalization({name: 'bn'}),
        tf.layers.depthwiseConv2d({name: 'dw', kernelSize: 2, depthMultiplier: 2, depthwiseInitializer: seeded('dw')}),
        tf.layers.maxPooling2d({name: 'pool', poolSize: 2}),
        tf.layers.timeDistributed({name: 'td', layer: tf.layers.dense({units: 2, kernelInitializer: seeded('td')})}),
      ],
    }),
  // No weights at all.
  no_weights: () =>
    tf.sequential({
      name: 'noweights',
      layers: [tf.layers.flatten({name: 'flat', inputShape: [2, 3]}), tf.layers.activation({name: 'act', activation: 'tanh'})],
    }),
  // A class only this script registers.
  custom_class: () =>
    tf.sequential({name: 'custom', layers: [dense('d', 2, {inputShape: [3]}), new TimesTwo({name: 'times_two'})]}),
};

async function save(model, dir) {
  fs.mkdirSync(dir, {recursive: true});
  const weightsFile = 'model.weights.bin';
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const json = {
        modelTopology: artifacts.modelTopology,
        format: artifacts.format,
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy,
        weightsManifest: [{paths: ['./' + weightsFile], weights: artifacts.weightSpecs}],
      };
      fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(json));
      const data = artifacts.weightData == null ? new ArrayBuffer(0) : artifacts.weightData;
      fs.writeFileSync(path.join(dir, weightsFile), Buffer.from(tf.io.concatenateArrayBuffers([data].flat())));
      return {modelArtifactsInfo: {dateSaved: new Date(0), modelTopologyType: 'JSON'}};
    }),
  );
}

async function main() {
  const out = process.argv[2];
  if (!out) throw new Error('usage: save_layers_model.js OUT_DIR');
  await tf.setBackend('cpu');
  for (const [name, build] of Object.entries(MODELS)) {
    await save(build(), path.join(out, name));
  }
}

main().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exit(1);
});
