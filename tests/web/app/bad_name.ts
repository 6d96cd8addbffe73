// Must NOT type-check: `input` is not the model's input name (hidden_input).
import * as tf from '@tensorflow/tfjs';
import { load } from '@rules-tfjs/mlp-web';

export async function wrongName() {
  const model = await load();
  return model.predict({ input: tf.tensor2d([[1, 2, 3, 4]]) });
}
