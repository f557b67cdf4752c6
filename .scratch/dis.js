const wabtFactory = require('wabt');
const fs = require('fs');
(async () => {
  const wabt = await wabtFactory();
  const buf = fs.readFileSync('node_modules/@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm');
  const m = wabt.readWasm(buf, { readDebugNames: true, simd: true, threads: true, bulk_memory: true, features: {simd:true, threads:true} });
  m.generateNames(); m.applyNames();
  fs.writeFileSync('/tmp/tfjs.wat', m.toText({ foldExprs: false, inlineExport: true }));
})();
