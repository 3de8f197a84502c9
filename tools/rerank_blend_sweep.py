# Sweeps SearchOptions.RerankWeight offline over two BEIR run files (first stage top N, its rerank): w/(k+rerank rank) + (1-w)/(k+first-stage rank), k = 60.
# Usage: python3 tools/rerank_blend_sweep.py nfcorpus.zip dev runs/hybrid100.dev.trec runs/ce.dev.trec
import sys, zipfile, math, collections
zip_path, split, first_run, rerank_run = sys.argv[1:5]
k = 60
qrels = collections.defaultdict(dict)
with zipfile.ZipFile(zip_path) as z:
    name = [n for n in z.namelist() if n.endswith(f"qrels/{split}.tsv")][0]
    for i, line in enumerate(z.read(name).decode().splitlines()):
        if i == 0: continue
        q, d, g = line.split("\t")
        qrels[q][d] = int(g)
def read(path):
    runs = collections.defaultdict(list)
    for line in open(path):
        q, _, d, r, s, _ = line.split()
        runs[q].append((int(r), d, float(s)))
    return {q: [d for _, d, _ in sorted(v)] for q, v in runs.items()}
first, rr = read(first_run), read(rerank_run)
def ndcg10(q, ranking):
    rel = qrels.get(q, {})
    dcg = sum((rel.get(d, 0)) / math.log2(i + 2) for i, d in enumerate(ranking[:10]))
    ideal = sorted((g for g in rel.values() if g > 0), reverse=True)[:10]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0
queries = [q for q in qrels if any(g > 0 for g in qrels[q].values())]
def mean(f): return sum(f(q) for q in queries) / len(queries)
print(f"{len(queries)} queries; first stage {mean(lambda q: ndcg10(q, first.get(q, [])[:100])):.4f}; rerank {mean(lambda q: ndcg10(q, rr.get(q, []))):.4f}")
for w in [i / 20 for i in range(21)]:
    def blend(q):
        f = first.get(q, [])[:100]
        r = rr.get(q, [])
        assert set(f) == set(r), q
        fr = {d: i for i, d in enumerate(f)}
        scores = {d: w / (k + i + 1) + (1 - w) / (k + fr[d] + 1) for i, d in enumerate(r)}
        return ndcg10(q, sorted(scores, key=lambda d: -scores[d]))
    print(f"w={w:.2f}  nDCG@10 {mean(blend):.4f}")
