/**
 * The random streams of the MNIST experiments. Every part of a run draws from its own key,
 *
 *   root(part) = foldIn(key(seed), tag(part)),   item i's key = foldIn(root(part), i),
 *
 * so skipping a part does not change the others' randomness, and item i's randomness depends neither on how many
 * items are drawn nor on how they are batched, sharded over threads or split over machines.
 *
 * @module pipeline/keys
 */
import { random, type Key } from '@score-sde/tensor-fp';

/** Stream tags of the parts (fixed forever: changing one changes that part's numbers). @category keys */
export const STREAMS = {
  cleanClassifier: 0xc1a55,
  noisyClassifier: 0x2015e,
  floor: 0xf1002,
  samples: 0x5a3d,
  bpd: 0xb9d,
  conditional: 0xc0d1,
  inpainting: 0x1a9a1,
  interpolation: 0x1e7b,
} as const;

/** The root key of a part: foldIn(key(seed), tag). @category keys */
export const partKey = (seed: number, tag: number): Key => random.foldIn(random.key(seed), tag);

/** Per-item keys foldIn(root, start + i), i < n. @category keys */
export const itemKeys = (root: Key, start: number, n: number): ReadonlyArray<Key> => Array.from({ length: n }, (_, i) => random.foldIn(root, start + i));

/**
 * The keys of unconditional samples start … start + n − 1 of a run with `seed`, the same in `experiments:mnist` and
 * `experiments:mnist-eval`: sample b uses foldIn(foldIn(key(seed), 0x5a3d), b).
 * @category keys
 */
export const sampleKeys = (seed: number, start: number, n: number): ReadonlyArray<Key> => itemKeys(partKey(seed, STREAMS.samples), start, n);
