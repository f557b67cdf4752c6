import { tf, initBackend, parseBackendName } from '@score-sde/tensor-fp';
import * as E from 'fp-ts/Either';

describe('backend choice', () => {
  test('SCORE_SDE_BACKEND accepts auto|tensorflow|wasm|cpu and names the variable when it is wrong', () => {
    expect(parseBackendName(undefined)).toEqual(E.right('auto'));
    expect(parseBackendName('WASM')).toEqual(E.right('wasm'));
    const bad = parseBackendName('gpu');
    expect(E.isLeft(bad) && bad.left.message).toMatch(/SCORE_SDE_BACKEND: expected one of auto\|tensorflow\|wasm\|cpu, got "gpu"/);
  });

  test('the wasm backend loads from node_modules and differentiates: d/dx mean(x²) = 2x/n', async () => {
    const info = await initBackend({ prefer: 'wasm', quiet: true });
    expect(info.name).toBe('wasm');
    const x = tf.tensor1d([1, -2, 3, 0.5]);
    const g = tf.grad((a: tf.Tensor) => tf.mean(tf.square(a)))(x);
    expect(Array.from(g.dataSync())).toEqual([0.5, -1, 1.5, 0.25]);
    tf.dispose([x, g]);
  });
});
