// Must NOT type-check: hidden_input is rank 2 ([batch, 4]), this is rank 1.
import * as tf from '@tensorflow/tfjs';
import { load } from '@rules-tfjs/mlp-web';

export async function wrongRank() {
  const model = await load();
  return model.predict({ hidden_input: tf.tensor1d([1, 2, 3, 4]) });
}
