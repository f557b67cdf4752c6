import { tf, initBackend, fused } from '@score-sde/tensor-fp';
const main = async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
  await fused.startKernelThread();
  const x = tf.randomNormal([64, 28, 28, 1]) as tf.Tensor4D;
  const f = tf.randomNormal([3, 3, 1, 16]);
  const h = tf.randomNormal([64, 26, 26, 16]) as tf.Tensor4D;
  const gamma = tf.ones([16]), beta = tf.zeros([16]), bias = tf.zeros([64, 16]);
  const spin = (ms: number) => { const t0 = performance.now(); while (performance.now() - t0 < ms) { /* */ } };
  const sleep = (ms: number) => { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms); };
  for (const mode of ['spin', 'sleep'] as const) for (const threadOn of [false, true]) for (const gap of [0, 0.5, 1, 2, 4, 8]) {
    fused.configureKernelThread({ enabled: threadOn });
    const ts: number[] = [];
    for (let i = 0; i < 25; i++) {
      tf.conv2d(x, f as tf.Tensor4D, 1, 'valid').dispose();
      if (gap > 0) (mode === 'spin' ? spin : sleep)(gap);
      const t0 = performance.now(); const r = fused.groupNormForward(h, gamma, beta, bias, 4, 1e-5, true) as unknown as Record<string, tf.Tensor>; ts.push(performance.now() - t0);
      Object.values(r).forEach((z) => z.dispose());
      sleep(10);
    }
    ts.sort((a, b) => a - b);
    console.log(`${mode} thread=${threadOn} gap ${gap} ms: GN median ${ts[12].toFixed(3)} min ${ts[0].toFixed(3)}`);
  }
};
void main();
