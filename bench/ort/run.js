// ONNX Runtime timings for `Funnel.Bench encoders`: reads a JSON request on stdin, prints JSON on stdout.
// Request: { model, threads, iterations, warmup, meanPool, batches: [{ ids: [[...]], types: [[...]] }] } (all rows of a
// batch have the same length). The session is configured as the comparison requires: intra-op threads = t,
// inter-op 1, all graph optimisations, sequential execution.
'use strict';
const ort = require('onnxruntime-node');

async function main() {
  const request = JSON.parse(require('fs').readFileSync(0, 'utf8'));
  const session = await ort.InferenceSession.create(request.model, {
    intraOpNumThreads: request.threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
  });
  const feeds = request.batches.map(({ ids, types }) => {
    const rows = ids.length, cols = ids[0].length, shape = [rows, cols];
    const tensor = (values) => new ort.Tensor('int64', BigInt64Array.from(values.flat(), BigInt), shape);
    return {
      input_ids: tensor(ids),
      attention_mask: tensor(ids.map((r) => r.map(() => 1))),
      token_type_ids: tensor(types),
    };
  });
  const first = await session.run(feeds[0]);
  for (let i = 1; i < request.warmup; i++) await session.run(feeds[i % feeds.length]);
  const latencies = [];
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < request.iterations; i++) {
    const start = process.hrtime.bigint();
    await session.run(feeds[i % feeds.length]);
    latencies.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  const cpu = process.cpuUsage(cpu0);
  const cpuMsPerBatch = (cpu.user + cpu.system) / 1000 / request.iterations;
  const firstOutput = rowsOf(first[session.outputNames[0]], request.meanPool);
  process.stdout.write(JSON.stringify({ version: ort.env.versions.node, latenciesMs: latencies, peakRssBytes: peakRss(), cpuMsPerBatch, firstOutput }));
}

// VmHWM of this process: getrusage's maxRSS would carry over the parent's peak across fork/exec.
function peakRss() {
  const line = require('fs').readFileSync('/proc/self/status', 'utf8').split('\n').find((l) => l.startsWith('VmHWM:'));
  return line ? Number(line.split(/\s+/)[1]) * 1024 : process.memoryUsage().rss;
}

// The first output as one array per batch row: logits as they are, or hidden states
// [batch × seq × hidden] mean-pooled over all tokens (no padding) and L2-normalised, as the bi-encoder does.
function rowsOf(tensor, meanPool) {
  const [rows] = tensor.dims, data = tensor.data;
  if (!meanPool) {
    const width = data.length / rows;
    return Array.from({ length: rows }, (_, r) => Array.from(data.subarray(r * width, (r + 1) * width)));
  }
  const [, seq, hidden] = tensor.dims;
  return Array.from({ length: rows }, (_, r) => {
    const v = new Float64Array(hidden);
    for (let t = 0; t < seq; t++) for (let d = 0; d < hidden; d++) v[d] += data[(r * seq + t) * hidden + d] / seq;
    const norm = Math.hypot(...v);
    return Array.from(v, (x) => x / norm);
  });
}

main().catch((e) => { process.stderr.write(String(e && e.stack || e) + '\n'); process.exit(1); });
