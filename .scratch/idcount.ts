import * as E from 'fp-ts/Either';
import { tf, initBackend, fused, random } from '@score-sde/tensor-fp';
import { initTrainState, trainStep, batchForStep, loadMnist, type TrainState } from '@score-sde/models';
import { defaultRecipe } from '../tools/bench/e2e/recipe';
const main = async () => {
  const { train: config } = await defaultRecipe();
  await initBackend({ prefer: 'wasm', quiet: true });
  await fused.startKernelThread();
  const loaded = await loadMnist({ split: 'train', subset: 640 })();
  if (E.isLeft(loaded)) throw new Error('mnist');
  const data = loaded.right;
  let state: TrainState = initTrainState(config, random.key(0));
  const step = trainStep(config);
  const advance = () => { const x0 = batchForStep(config, state, data); const r = step(state, x0); x0.dispose(); if (E.isLeft(r)) throw new Error('step'); state = r.right.state as TrainState; };
  for (let i = 0; i < 3; i++) advance();
  const engine = tf.engine() as unknown as { runKernel: (name: string, ...a: unknown[]) => unknown };
  const orig = engine.runKernel.bind(engine);
  const counts = new Map<string, number>();
  engine.runKernel = (name: string, ...a: unknown[]) => {
    if (name === 'Identity' || name === 'Reshape') {
      const st = (new Error().stack ?? '').split('\n').slice(2, 9).map((l) => l.trim().replace(/\(.*node_modules\//, '(').replace(/\(\/work\/main\//, '(')).filter((l) => !/tf-core|engine|runKernel|operation|tfjs-core/.test(l)).slice(0, 2).join(' <- ');
      const k = `${name}: ${st}`;
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    return orig(name, ...a);
  };
  advance();
  [...counts.entries()].sort((a, b) => b[1] - a[1]).slice(0, 25).forEach(([k, v]) => console.log(v, k));
};
void main();
