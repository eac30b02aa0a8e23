// onnxruntime's Node.js binding vs kiln: the check of scripts/onnxruntime_check.py
// for machines whose python has no onnxruntime but whose npm reaches onnxruntime-node.
//
//   (cd /tmp/ort && npm install --ignore-scripts onnxruntime-node)     # CPU binaries ship in the package
//   kiln export-onnx CHECKPOINT -o model.onnx --sample sample.safetensors
//   ORT_NODE=/tmp/ort/node_modules/onnxruntime-node node scripts/onnxruntime_check_node.mjs model.onnx sample.safetensors [...]
//
// For each pair: the sample's "input" runs as one batch and image by image (the
// batch dimension N is symbolic), and both outputs are compared with kiln's
// "logits" (relative L2 <= 1e-5). Exits 1 on a mismatch, 2 when onnxruntime-node
// cannot be loaded.
import fs from 'fs';
import { createRequire } from 'module';
const require = createRequire(import.meta.url);
let ort;
try {
  ort = require(process.env.ORT_NODE || 'onnxruntime-node');
} catch (error) {
  console.log(`onnxruntime-check-node: cannot load onnxruntime-node (${error.message}); install it with npm and set ORT_NODE`);
  process.exit(2);
}
function loadSafetensors(path) {
  const buf = fs.readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString());
  const out = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    if (info.dtype !== 'F32') throw new Error(`${path}: ${name} is ${info.dtype}`);
    const [b, e] = info.data_offsets;
    const bytes = buf.subarray(8 + n + b, 8 + n + e);
    const data = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
    out[name] = { data, dims: info.shape };
  }
  return out;
}
const rel = (got, want) => { let d = 0, w = 0; for (let i = 0; i < want.length; ++i) { d += (got[i] - want[i]) ** 2; w += want[i] ** 2; } return Math.sqrt(d) / Math.max(Math.sqrt(w), 1e-12); };
const args = process.argv.slice(2);
if (args.length < 2 || args.length % 2) {
  console.log('usage: node scripts/onnxruntime_check_node.mjs MODEL.onnx SAMPLE.safetensors [MODEL2 SAMPLE2 ...]');
  process.exit(2);
}
let failed = 0;
for (let i = 0; i < args.length; i += 2) {
  const s = loadSafetensors(args[i + 1]);
  const session = await ort.InferenceSession.create(args[i]);
  const [inName] = session.inputNames, [outName] = session.outputNames;
  const whole = (await session.run({ [inName]: new ort.Tensor('float32', s.input.data, s.input.dims) }))[outName];
  const per = s.input.data.length / s.input.dims[0];
  const one = [];
  for (let k = 0; k < s.input.dims[0]; ++k) {
    const r = (await session.run({ [inName]: new ort.Tensor('float32', s.input.data.slice(k * per, (k + 1) * per), [1, ...s.input.dims.slice(1)]) }))[outName];
    one.push(...r.data);
  }
  const e1 = rel(whole.data, s.logits.data), e2 = rel(one, s.logits.data);
  const ok = e1 <= 1e-5 && e2 <= 1e-5 && whole.dims.join() === s.logits.dims.join();
  failed += !ok;
  console.log(`onnxruntime-check-node: ${ok ? 'OK' : 'FAILED'} ${args[i]}: onnxruntime-node ${ort.env.versions?.common ?? ''} batch ${e1.toExponential(2)}, one by one ${e2.toExponential(2)}`);
}
process.exit(failed ? 1 : 0);
