// Live hnswlib anchor for `Funnel.Bench ann --hnswlib`: reads the bench's data file, builds hnswlib (inner product)
// with the same M/efConstruction, and prints one JSON line per efSearch with recall@10 and single-thread QPS.
// File layout (little-endian): int32 n, nq, dim, k; float32 points[n*dim]; float32 queries[nq*dim]; int32 truth[nq*k].
const fs = require('fs');
const { HierarchicalNSW } = require('hnswlib-node');

const [file, m, efc, efList] = process.argv.slice(2);
const buf = fs.readFileSync(file);
const head = new Int32Array(buf.buffer, buf.byteOffset, 4);
const [n, nq, dim, k] = head;
const points = new Float32Array(buf.buffer.slice(buf.byteOffset + 16, buf.byteOffset + 16 + n * dim * 4));
const qOff = 16 + n * dim * 4;
const queries = new Float32Array(buf.buffer.slice(buf.byteOffset + qOff, buf.byteOffset + qOff + nq * dim * 4));
const tOff = qOff + nq * dim * 4;
const truth = new Int32Array(buf.buffer.slice(buf.byteOffset + tOff, buf.byteOffset + tOff + nq * k * 4));

const index = new HierarchicalNSW('ip', dim);
index.initIndex(n, Number(m), Number(efc), 100);
const cpuSeconds = since => { const u = process.cpuUsage(since); return (u.user + u.system) / 1e6; };
let t = process.hrtime.bigint();
let c = process.cpuUsage();
for (let i = 0; i < n; i++) index.addPoint(Array.from(points.subarray(i * dim, (i + 1) * dim)), i);
const buildSeconds = Number(process.hrtime.bigint() - t) / 1e9;
console.log(JSON.stringify({ build_s: buildSeconds, build_cpu_s: cpuSeconds(c), threads: 1 }));

const qs = [];
for (let q = 0; q < nq; q++) qs.push(Array.from(queries.subarray(q * dim, (q + 1) * dim)));
for (const ef of efList.split(',').map(Number)) {
  index.setEf(ef);
  for (let q = 0; q < Math.min(100, nq); q++) index.searchKnn(qs[q], k);
  t = process.hrtime.bigint();
  c = process.cpuUsage();
  const results = qs.map(q => index.searchKnn(q, k).neighbors);
  const seconds = Number(process.hrtime.bigint() - t) / 1e9;
  const cpu = cpuSeconds(c);
  let hit = 0;
  for (let q = 0; q < nq; q++) {
    const set = new Set(truth.subarray(q * k, (q + 1) * k));
    for (const id of results[q]) if (set.has(id)) hit++;
  }
  console.log(JSON.stringify({ ef, recall: hit / (nq * k), qps: nq / seconds, qps_cpu: nq / cpu }));
}
