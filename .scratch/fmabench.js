const v8 = require('v8');
v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
(async () => {
  const wabt = await require('wabt')();
  const body = (op) => {
    // 8 independent accumulators, a and b from registers broadcast-style; n iterations
    let s = '';
    for (let k = 0; k < 8; k++) s += op === 'fma'
      ? `(local.set $a${k} (f32x4.relaxed_madd (local.get $x) (local.get $y${k % 2}) (local.get $a${k})))`
      : `(local.set $a${k} (f32x4.add (f32x4.mul (local.get $x) (local.get $y${k % 2})) (local.get $a${k})))`;
    return s;
  };
  const mk = (op) => `(module (memory (export "m") 1)
    (func (export "run") (param $n i32) (local $i i32) (local $x v128) (local $y0 v128) (local $y1 v128)
      ${[...Array(8).keys()].map((k) => `(local $a${k} v128)`).join(' ')}
      (local.set $x (v128.load (i32.const 0))) (local.set $y0 (v128.load (i32.const 16))) (local.set $y1 (v128.load (i32.const 32)))
      (loop $l ${body(op)}
        (local.set $x (f32x4.mul (local.get $x) (local.get $y0)))
        (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $n))))
      (v128.store (i32.const 64) (f32x4.add (f32x4.add (f32x4.add (local.get $a0) (local.get $a1)) (f32x4.add (local.get $a2) (local.get $a3))) (f32x4.add (f32x4.add (local.get $a4) (local.get $a5)) (f32x4.add (local.get $a6) (local.get $a7)))))))`;
  for (const op of ['muladd', 'fma', 'muladd', 'fma']) {
    const bin = wabt.parseWat('t.wat', mk(op), { simd: true, relaxed_simd: true }).toBinary({}).buffer;
    const inst = await WebAssembly.instantiate(await WebAssembly.compile(bin), {});
    const f32 = new Float32Array(inst.exports.m.buffer); f32.fill(1.0000001, 0, 12);
    inst.exports.run(1e6);
    const n = 2e7; const t0 = performance.now(); inst.exports.run(n); const ms = performance.now() - t0;
    console.log(op, (8 * 4 * n / ms / 1e6).toFixed(1), 'GMAC/s single thread');
  }
})();
