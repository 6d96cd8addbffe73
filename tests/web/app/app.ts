// A web app using the packaged example model (//examples:mlp_web) the way its README
// says: import the package, load() it, call the typed predict. Bundled by esbuild and
// type-checked by tsc in tests/python/test_web_package.py, then run in Chromium, which
// reads the result from window.__result.
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { IntegrityError, inputs, load } from '@rules-tfjs/mlp-web';
import { load as loadLayers } from '@rules-tfjs/mlp-layers-web';

declare global {
  interface Window {
    __result?: unknown;
  }
}

async function predictOn(backend: string, x: number[][]) {
  if (!(await tf.setBackend(backend))) throw new Error(`backend ${backend} is not available`);
  await tf.ready();
  const model = await load({ baseUrl: new URL('pkg/', location.href) });
  const graphModel: tf.GraphModel = model; // the typed Model is a tf.GraphModel
  if (graphModel.inputs.length !== Object.keys(inputs).length) throw new Error('unexpected inputs');
  // Typed: the input's name and rank come from the package's index.d.ts.
  const y: tf.Tensor2D = model.predict({ hidden_input: tf.tensor2d(x) });
  // The same MLP as a layers model: predict typed by the input's rank, in input order.
  const layersModel = await loadLayers({ baseUrl: new URL('pkg-layers/', location.href) });
  const asLayersModel: tf.LayersModel = layersModel; // the typed Model is a tf.LayersModel
  if (asLayersModel.inputs.length !== 1) throw new Error('unexpected layers inputs');
  const ly = layersModel.predict(tf.tensor2d(x)) as tf.Tensor;
  const result = {
    backend: tf.getBackend(),
    shape: y.shape,
    data: Array.from(await y.data()),
    layersShape: ly.shape,
    layersData: Array.from(await ly.data()),
    float32: backend === 'webgl' ? tf.env().getBool('WEBGL_RENDER_FLOAT32_ENABLED') : true,
    webglVersion: backend === 'webgl' ? tf.env().getNumber('WEBGL_VERSION') : 0,
  };
  tf.dispose([y, ly]);
  model.dispose();
  layersModel.dispose();
  return result;
}

async function corrupted() {
  try {
    await load({ baseUrl: new URL('corrupt/', location.href) });
    return { rejected: false };
  } catch (err) {
    const e = err as Error & { file?: string };
    return { rejected: true, isIntegrityError: err instanceof IntegrityError, file: e.file, message: e.message };
  }
}

async function main() {
  const params = new URLSearchParams(location.search);
  const x = JSON.parse(params.get('input') ?? '[]') as number[][];
  setWasmPaths(new URL('wasm/', location.href).href);
  const runs = [];
  for (const backend of ['webgl', 'wasm']) runs.push(await predictOn(backend, x));
  return { ok: true, inputs, runs, corrupt: await corrupted() };
}

main().then(
  (result) => {
    window.__result = result;
  },
  (err) => {
    window.__result = { ok: false, error: String((err && err.stack) || err) };
  },
);
