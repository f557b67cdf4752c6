import { tf, initBackend, fused } from '@score-sde/tensor-fp';
const main = async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
  await fused.startKernelThread();
  const x = tf.randomNormal([64, 28, 28, 1]) as tf.Tensor4D;
  const f = tf.randomNormal([3, 3, 1, 16]);
  const h = tf.randomNormal([64, 26, 26, 16]) as tf.Tensor4D;
  const gamma = tf.ones([16]), beta = tf.zeros([16]), bias = tf.zeros([64, 16]);
  const time = (g: () => tf.Tensor | tf.Tensor[] | Record<string, tf.Tensor>) => { const t0 = performance.now(); const r = g(); const t = performance.now() - t0; (Array.isArray(r) ? r : r instanceof tf.Tensor ? [r] : Object.values(r)).forEach((z) => z.dispose()); return t; };
  for (const threadOn of [false, true, false, true]) {
    fused.configureKernelThread({ enabled: threadOn });
    const alone: number[] = [], afterConv: number[] = [], conv: number[] = [];
    for (let i = 0; i < 30; i++) {
      alone.push(time(() => fused.groupNormForward(h, gamma, beta, bias, 4, 1e-5, true) as never));
      conv.push(time(() => tf.conv2d(x, f as tf.Tensor4D, 1, 'valid')));
      afterConv.push(time(() => fused.groupNormForward(h, gamma, beta, bias, 4, 1e-5, true) as never));
      const t0 = performance.now(); while (performance.now() - t0 < 5) { /* idle spin so pools settle */ }
    }
    const med = (a: number[]) => [...a].sort((p, q) => p - q)[a.length >> 1].toFixed(3);
    console.log(`thread ${threadOn}: GN alone ${med(alone)}  conv ${med(conv)}  GN right after conv ${med(afterConv)}`);
  }
};
void main();
