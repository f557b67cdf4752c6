const v8 = require('v8');
const flag = process.argv[2] === 'flag';
if (flag) v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
(async () => {
  const wabt = await require('wabt')();
  const src = `(module (memory (export "m") 1)
    (func (export "fma") (param $n i32) (local $i i32) (local $acc v128)
      (loop $l
        (local.set $acc (f32x4.relaxed_madd (v128.load (local.get $i)) (v128.load (i32.add (local.get $i) (i32.const 16))) (local.get $acc)))
        (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 16))) (local.get $n))))
      (v128.store (i32.const 0) (local.get $acc))))`;
  let bin;
  try { bin = wabt.parseWat('t.wat', src, { simd: true, relaxed_simd: true }).toBinary({}).buffer; } catch (e) { console.log('wabt:', e.message.split('\n')[0]); return; }
  try { const m = await WebAssembly.compile(bin); console.log('compiled with relaxed SIMD', flag ? '(flag set at runtime)' : '(no flag)'); } catch (e) { console.log('compile failed:', e.message); }
})();
