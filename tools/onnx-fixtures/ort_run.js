// Runs an ONNX model once with onnxruntime-node, for make_fixtures.py's cross-check.
// stdin: { model, ids: [[...]], types: [[...]] } (a padded batch; id 0 is padding, so the mask is ids != 0
// except that every row's first token counts). stdout: { outputName: { dims, data } } for every output.
// No graph optimisations: the check is of the graph as written, not of ONNX Runtime's rewrites.
'use strict';
const ort = require('onnxruntime-node');

async function main() {
  const request = JSON.parse(require('fs').readFileSync(0, 'utf8'));
  const session = await ort.InferenceSession.create(request.model, { graphOptimizationLevel: 'disabled' });
  const shape = [request.ids.length, request.ids[0].length];
  const tensor = (rows) => new ort.Tensor('int64', BigInt64Array.from(rows.flat(), BigInt), shape);
  const feeds = {
    input_ids: tensor(request.ids),
    attention_mask: tensor(request.ids.map((row) => row.map((id, i) => (id !== 0 || i === 0 ? 1 : 0)))),
    token_type_ids: tensor(request.types),
  };
  const outputs = await session.run(feeds);
  const result = {};
  for (const name of session.outputNames) result[name] = { dims: outputs[name].dims, data: Array.from(outputs[name].data, Number) };
  process.stdout.write(JSON.stringify(result));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
