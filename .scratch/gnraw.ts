import { fusedKernelsBinary } from '@score-sde/tensor-fp';
const main = async () => {
  const bin = await fusedKernelsBinary(false);
  const memory = new WebAssembly.Memory({ initial: 400 });
  const inst = await WebAssembly.instantiate(await WebAssembly.compile(bin), { env: { memory } });
  const k = inst.exports as Record<string, (...a: number[]) => void>;
  const [b, hw, c] = [64, 676, 16];
  const n = b * hw * c;
  const f = new Float32Array(memory.buffer);
  const X = 0, OUT = 4 * n, MC = 8 * n, VC = MC + 4 * b * c, SC = VC + 4 * b * c, SH = SC + 4 * b * c;
  for (let i = 0; i < n; i++) f[i] = Math.sin(i * 0.37) * 2 + 0.3;
  for (let i = 0; i < b * c; i++) { f[SC / 4 + i] = 1.1; f[SH / 4 + i] = 0.1; }
  const time = (g: () => void) => { const ts: number[] = []; for (let r = 0; r < 40; r++) { const t0 = performance.now(); g(); ts.push(performance.now() - t0); } ts.sort((p, q) => p - q); return `${ts[0].toFixed(3)} / ${ts[20].toFixed(3)}`; };
  for (let rep = 0; rep < 2; rep++) {
    console.log('gn_stats', time(() => k.gn_stats(X, b, hw, c, MC, VC)));
    console.log('gn_apply swish', time(() => k.gn_apply(X, b, hw, c, SC, SH, 1, OUT)));
    console.log('gn_apply plain', time(() => k.gn_apply(X, b, hw, c, SC, SH, 0, OUT)));
  }
};
void main();
