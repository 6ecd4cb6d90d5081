// Checks an exported gfl model in ONNX Runtime's Node.js binding, independently of gfl's C# code: reads
// MODEL.onnx.sample.safetensors (the input under the graph's input name, gfl's own outputs under the output names),
// runs the model on the input and compares every output. Exit 0 when all agree, 1 otherwise.
//   node scripts/onnx-node/check_sample.mjs MODEL.onnx [SAMPLE.safetensors]
// Tolerances as the C# tests: float outputs 1e-3 absolute (boxes are in pixels), int64 outputs exactly.
import { readFileSync } from 'node:fs';
import ort from 'onnxruntime-node';

const [model, samplePath = model + '.sample.safetensors'] = process.argv.slice(2);
if (!model) { console.error('usage: check_sample.mjs MODEL.onnx [SAMPLE.safetensors]'); process.exit(2); }

// safetensors: u64 little-endian header length, a JSON header {name: {dtype, shape, data_offsets}}, then the data.
function readSafetensors(path) {
  const bytes = readFileSync(path);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8'));
  const base = 8 + headerLength;
  const tensors = {};
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [begin, end] = t.data_offsets;
    const raw = bytes.buffer.slice(bytes.byteOffset + base + begin, bytes.byteOffset + base + end);
    const data = t.dtype === 'F32' ? new Float32Array(raw) : t.dtype === 'I64' ? new BigInt64Array(raw)
      : (() => { throw new Error(`${path}: ${name} has dtype ${t.dtype}`); })();
    tensors[name] = { dtype: t.dtype, shape: t.shape, data };
  }
  return tensors;
}

const sample = readSafetensors(samplePath);
const session = await ort.InferenceSession.create(model);
const [inputName] = session.inputNames;
if (!sample[inputName]) { console.error(`${samplePath}: no tensor named ${inputName} (the model's input)`); process.exit(1); }
const input = sample[inputName];
const results = await session.run({ [inputName]: new ort.Tensor('float32', input.data, input.shape) });
let failed = false;
for (const name of session.outputNames) {
  const expected = sample[name];
  const actual = results[name];
  if (!expected) { console.error(`${name}: not in the sample`); failed = true; continue; }
  if (JSON.stringify(actual.dims) !== JSON.stringify(expected.shape)) {
    console.error(`${name}: shape ${JSON.stringify(actual.dims)}, the sample ${JSON.stringify(expected.shape)}`);
    failed = true;
    continue;
  }
  let worst = 0;
  for (let i = 0; i < expected.data.length; i++) {
    const d = expected.dtype === 'I64' ? Number(actual.data[i] - expected.data[i]) : actual.data[i] - expected.data[i];
    worst = Math.max(worst, Math.abs(d));
  }
  const ok = expected.dtype === 'I64' ? worst === 0 : worst <= 1e-3;
  console.log(`${name}: ${JSON.stringify(actual.dims)} largest difference ${worst} ${ok ? 'ok' : 'FAIL'}`);
  failed ||= !ok;
}
console.log(`onnxruntime-node ${ort.env.versions?.common ?? ''}: ${failed ? 'MISMATCH' : 'all outputs equal gfl\'s sample'}`);
process.exit(failed ? 1 : 0);
