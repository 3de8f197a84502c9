#!/usr/bin/python3
"""Independent PyTorch reference for Funnel's BERT inference.

Writes the deterministic random-weight checkpoints (byte-identical to Funnel's C#
`SeededCheckpoint`) and the expected outputs of Hugging Face BertModel /
BertForSequenceClassification + sentence-transformers pooling on them. The forward pass
here is written from the HF semantics (padded batch, additive large-negative attention
mask), independently of Funnel's unpadded path. Needs only torch and numpy (Debian's
python3-torch 1.13); no `transformers`.

    /usr/bin/python3 tools/reference/bert_reference.py --shared ../shared \
        --out tests/Funnel.Tests/Fixtures/reference/bert_reference.json
    /usr/bin/python3 tools/reference/bert_reference.py --shared ../shared --onnx /tmp/onnx

See tools/reference/README.md for the PRNG and file format specification.
"""
import argparse
import hashlib
import json
import math
import os
import struct
import sys
import unicodedata

import numpy as np
import torch

M64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


# ---------------------------------------------------------------- deterministic weights

def mix64(z):
    """SplitMix64's finaliser on a numpy uint64 array (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def fnv1a64(text):
    h = 0xCBF29CE484222325
    for b in text.encode("utf-8"):
        h = ((h ^ b) * 0x100000001B3) & M64
    return h


def tensor_values(seed, name, count, offset, scale):
    """Element i = float32(offset + scale * x_i), x_i = (k_i - 2^23) / 2^23, k_i = the top 24 bits
    of mix64(stream + (i + 1) * GOLDEN), stream = mix64(seed * GOLDEN + fnv1a64(name))."""
    with np.errstate(over="ignore"):
        stream = mix64(np.array([(seed * GOLDEN + fnv1a64(name)) & M64], dtype=np.uint64))[0]
        i = np.arange(1, count + 1, dtype=np.uint64)
        z = mix64(stream + i * np.uint64(GOLDEN))
    k = (z >> np.uint64(40)).astype(np.float64)
    x = (k - 8388608.0) / 8388608.0
    return (offset + scale * x).astype(np.float32)


def init_of(name, shape):
    """(offset, scale) of a tensor's uniform distribution; chosen so that outputs are far from
    degenerate (peaky attention, spread logits)."""
    if name.endswith("LayerNorm.weight"):
        return 1.0, 0.2
    if name.endswith("word_embeddings.weight"):
        return 0.0, 1.0
    if name.endswith("position_embeddings.weight") or name.endswith("token_type_embeddings.weight"):
        return 0.0, 0.5
    if len(shape) == 2:
        gain = 1.5 if (name.endswith("query.weight") or name.endswith("key.weight")) else \
            4.0 if name.endswith("classifier.weight") else 1.0
        return 0.0, gain * math.sqrt(3.0 / shape[1])
    return 0.0, 0.1  # biases, LayerNorm.bias


SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
MINILM_L6 = dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536)


def architecture(like_dir, arch):
    with open(os.path.join(like_dir, "config.json")) as f:
        cfg = json.load(f)
    cfg.update(SMALL if arch == "small" else MINILM_L6)
    return cfg


def tensor_specs(cfg, cross_encoder):
    """The checkpoint's tensors in file order: (name, shape)."""
    h, i, p = cfg["hidden_size"], cfg["intermediate_size"], "bert." if cross_encoder else ""
    specs = [
        (p + "embeddings.word_embeddings.weight", [cfg["vocab_size"], h]),
        (p + "embeddings.position_embeddings.weight", [cfg["max_position_embeddings"], h]),
        (p + "embeddings.token_type_embeddings.weight", [cfg["type_vocab_size"], h]),
        (p + "embeddings.LayerNorm.weight", [h]),
        (p + "embeddings.LayerNorm.bias", [h]),
    ]
    for l in range(cfg["num_hidden_layers"]):
        q = f"{p}encoder.layer.{l}."
        for part in ("query", "key", "value"):
            specs += [(q + f"attention.self.{part}.weight", [h, h]), (q + f"attention.self.{part}.bias", [h])]
        specs += [
            (q + "attention.output.dense.weight", [h, h]), (q + "attention.output.dense.bias", [h]),
            (q + "attention.output.LayerNorm.weight", [h]), (q + "attention.output.LayerNorm.bias", [h]),
            (q + "intermediate.dense.weight", [i, h]), (q + "intermediate.dense.bias", [i]),
            (q + "output.dense.weight", [h, i]), (q + "output.dense.bias", [h]),
            (q + "output.LayerNorm.weight", [h]), (q + "output.LayerNorm.bias", [h]),
        ]
    specs += [(p + "pooler.dense.weight", [h, h]), (p + "pooler.dense.bias", [h])]
    if cross_encoder:
        specs += [("classifier.weight", [1, h]), ("classifier.bias", [1])]
    return specs


def to_bf16_bits(values):
    """float32 -> bfloat16 bits, round to nearest even (no NaNs occur here)."""
    bits = values.view(np.uint32).astype(np.uint64)
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)


def encode(values, dtype):
    if dtype == "F32":
        return values.astype("<f4").tobytes()
    if dtype == "F16":
        return values.astype("<f2").tobytes()
    return to_bf16_bits(values).astype("<u2").tobytes()


def stored_values(values, dtype):
    """What a reader gets back from the stored bytes, as float32."""
    if dtype == "F32":
        return values
    if dtype == "F16":
        return values.astype(np.float16).astype(np.float32)
    return (to_bf16_bits(values).astype(np.uint32) << 16).view(np.float32)


def safetensors_bytes(tensors, dtype):
    """tensors: [(name, shape, bytes)]. Header: compact JSON in tensor order, space-padded so the
    data starts at a multiple of 8."""
    parts, offset = ['"__metadata__":{"format":"pt"}'], 0
    for name, shape, data in tensors:
        parts.append('"%s":{"dtype":"%s","shape":[%s],"data_offsets":[%d,%d]}'
                     % (name, dtype, ",".join(str(d) for d in shape), offset, offset + len(data)))
        offset += len(data)
    header = ("{" + ",".join(parts) + "}").encode("utf-8")
    header += b" " * ((8 - (8 + len(header)) % 8) % 8)
    return struct.pack("<Q", len(header)) + header + b"".join(d for _, _, d in tensors)


def checkpoint(cfg, cross_encoder, seed, dtype, shards):
    """Returns ({file name: bytes}, {tensor name: float32 array as stored})."""
    tensors, weights = [], {}
    for name, shape in tensor_specs(cfg, cross_encoder):
        offset, scale = init_of(name, shape)
        v = tensor_values(seed, name, int(np.prod(shape)), offset, scale)
        tensors.append((name, shape, encode(v, dtype)))
        weights[name] = stored_values(v, dtype).reshape(shape)
    if shards == 1:
        return {"model.safetensors": safetensors_bytes(tensors, dtype)}, weights
    # Shard boundaries: equal runs of tensors in file order.
    files, weight_map, per = {}, {}, -(-len(tensors) // shards)
    for s in range(shards):
        chunk = tensors[s * per:(s + 1) * per]
        fname = "model-%05d-of-%05d.safetensors" % (s + 1, shards)
        files[fname] = safetensors_bytes(chunk, dtype)
        for name, _, _ in chunk:
            weight_map[name] = fname
    total = sum(len(d) for _, _, d in tensors)
    entries = ",".join('"%s":"%s"' % (n, weight_map[n]) for n, _, _ in tensors)
    files["model.safetensors.index.json"] = ('{"metadata":{"total_size":%d},"weight_map":{%s}}' % (total, entries)).encode()
    return files, weights


# ---------------------------------------------------------------- reference tokenizer

def load_vocab(path):
    with open(path, encoding="utf-8") as f:
        return {line.rstrip("\n"): i for i, line in enumerate(f)}


def basic_tokens(text):
    """BERT BasicTokenizer for the ASCII fixture texts: lower case, split on whitespace and punctuation."""
    text = unicodedata.normalize("NFD", text.lower())
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    out = []
    for word in text.split():
        cur = ""
        for c in word:
            if unicodedata.category(c).startswith("P") or (33 <= ord(c) <= 47) or (58 <= ord(c) <= 64) \
                    or (91 <= ord(c) <= 96) or (123 <= ord(c) <= 126):
                if cur:
                    out.append(cur)
                out.append(c)
                cur = ""
            else:
                cur += c
        if cur:
            out.append(cur)
    return out


def wordpiece(word, vocab):
    pieces, start = [], 0
    while start < len(word):
        end, cur = len(word), None
        while start < end:
            sub = word[start:end] if start == 0 else "##" + word[start:end]
            if sub in vocab:
                cur = sub
                break
            end -= 1
        if cur is None:
            return [vocab["[UNK]"]]
        pieces.append(vocab[cur])
        start = end
    return pieces


def tokenize(text, vocab):
    return [p for w in basic_tokens(text) for p in wordpiece(w, vocab)]


def encode_single(text, vocab, max_len):
    ids = tokenize(text, vocab)[: max_len - 2]
    return [vocab["[CLS]"]] + ids + [vocab["[SEP]"]]


def encode_pair(a, b, vocab, max_len):
    x, y = tokenize(a, vocab), tokenize(b, vocab)
    while len(x) + len(y) > max_len - 3:  # longest_first
        if len(x) > len(y):
            x.pop()
        else:
            y.pop()
    ids = [vocab["[CLS]"]] + x + [vocab["[SEP]"]] + y + [vocab["[SEP]"]]
    return ids, [0] * (len(x) + 2) + [1] * (len(y) + 1)


# ---------------------------------------------------------------- HF BERT semantics

def pad(seqs, value):
    n = max(len(s) for s in seqs)
    return torch.tensor([s + [value] * (n - len(s)) for s in seqs])


def hf_encoder(P, cfg, input_ids, attention_mask, token_type_ids):
    """HF BertModel's encoder on a padded batch [B, T] with the additive mask; P(name) gives a
    weight tensor (name without the bert. prefix). Returns last_hidden_state [B, T, H]."""
    heads, h, eps = cfg["num_attention_heads"], cfg["hidden_size"], cfg["layer_norm_eps"]
    d = h // heads
    bsz, T = input_ids.shape[0], input_ids.shape[1]
    ln = lambda x, n: torch.nn.functional.layer_norm(x, (h,), P(n + ".weight"), P(n + ".bias"), eps)
    lin = lambda x, n: torch.nn.functional.linear(x, P(n + ".weight"), P(n + ".bias"))
    x = P("embeddings.word_embeddings.weight")[input_ids] \
        + P("embeddings.position_embeddings.weight")[torch.arange(T)][None] \
        + P("embeddings.token_type_embeddings.weight")[token_type_ids]
    x = ln(x, "embeddings.LayerNorm")
    dtype = x.dtype
    additive = (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min
    for l in range(cfg["num_hidden_layers"]):
        q = f"encoder.layer.{l}."
        split = lambda y: y.view(bsz, T, heads, d).permute(0, 2, 1, 3)
        Q, K, V = (split(lin(x, q + "attention.self." + n)) for n in ("query", "key", "value"))
        scores = Q @ K.transpose(-1, -2) / math.sqrt(d) + additive
        ctx = (torch.softmax(scores, dim=-1) @ V).permute(0, 2, 1, 3).reshape(bsz, T, h)
        x = ln(lin(ctx, q + "attention.output.dense") + x, q + "attention.output.LayerNorm")
        inter = torch.nn.functional.gelu(lin(x, q + "intermediate.dense"))
        x = ln(lin(inter, q + "output.dense") + x, q + "output.LayerNorm")
    return x


def bert_forward(w, cfg, prefix, ids, type_ids, dtype=torch.float64):
    """HF BertModel on the padded batch of unpadded id lists: returns (last_hidden_state [B,T,H], mask [B,T])."""
    t = {k: torch.from_numpy(np.array(v)).to(dtype) for k, v in w.items()}
    mask = pad([[1] * len(s) for s in ids], 0)
    return hf_encoder(lambda n: t[prefix + n], cfg, pad(ids, 0), mask, pad(type_ids, 0)), mask


def pool(hidden, mask, modes, normalize):
    """sentence-transformers Pooling (+ Normalize); several modes ("cls+mean") concatenate in
    sentence-transformers' order: cls, max, mean, mean_sqrt_len."""
    m = mask[..., None].to(hidden.dtype)
    parts = []
    for mode in ("cls", "max", "mean", "mean_sqrt_len"):
        if mode not in modes.split("+"):
            continue
        if mode == "cls":
            parts.append(hidden[:, 0])
        elif mode == "max":
            parts.append(hidden.masked_fill(m == 0, -1e9).max(1).values)
        elif mode == "mean":
            parts.append((hidden * m).sum(1) / m.sum(1).clamp(min=1e-9))
        else:
            parts.append((hidden * m).sum(1) / torch.sqrt(m.sum(1).clamp(min=1e-9)))
    out = torch.cat(parts, dim=1)
    return torch.nn.functional.normalize(out, p=2, dim=1) if normalize else out


def classify(w, cfg, hidden):
    """BertForSequenceClassification head: pooler dense + tanh on [CLS], then the classifier."""
    t = lambda n: torch.from_numpy(np.array(w[n])).to(hidden.dtype)
    pooled = torch.tanh(hidden[:, 0] @ t("bert.pooler.dense.weight").T + t("bert.pooler.dense.bias"))
    return (pooled @ t("classifier.weight").T + t("classifier.bias"))[:, 0]


# ---------------------------------------------------------------- fixtures

TEXTS = [
    "This is an example sentence",
    "Each sentence is converted.",
    "",
    "Berlin had a population of 3,520,031 registered inhabitants in an area of 891.82 square kilometers.",
    "Berlin is well known for its museums.",
    "How many people live in Berlin?",
    "The quick brown fox jumps over the lazy dog, while the cat watches from the window sill "
    "and the bird sings in the tree outside; nobody notices the mouse sneaking into the kitchen "
    "to steal a small piece of cheese left on the table after dinner.",
    "Metoprolol succinate is also known by the brand name Toprol XL.",
]
QUERY = "How many people live in Berlin?"
DOCS = [TEXTS[3], TEXTS[4], TEXTS[6], "", "Paris is the capital of France."]

# name: (like model, arch, cross-encoder, seed, dtype, pooling, shards)
VARIANTS = {
    "minilm-bi": ("all-MiniLM-L6-v2", "minilm-l6", False, 1, "F32", "mean", 1),
    "minilm-ce": ("ms-marco-MiniLM-L-6-v2", "minilm-l6", True, 2, "F32", None, 1),
    "small-bi": ("all-MiniLM-L6-v2", "small", False, 3, "F32", "mean", 1),
    "small-bi-f16": ("all-MiniLM-L6-v2", "small", False, 3, "F16", "mean", 1),
    "small-bi-bf16": ("all-MiniLM-L6-v2", "small", False, 3, "BF16", "mean", 1),
    "small-bi-cls": ("all-MiniLM-L6-v2", "small", False, 3, "F32", "cls", 1),
    "small-bi-max": ("all-MiniLM-L6-v2", "small", False, 3, "F32", "max", 1),
    "small-bi-sharded": ("all-MiniLM-L6-v2", "small", False, 3, "F32", "mean", 2),
    # Concatenated modes (normalised jointly, so the mean_sqrt_len scale matters).
    "small-bi-cls-meansqrt": ("all-MiniLM-L6-v2", "small", False, 3, "F32", "cls+mean_sqrt_len", 1),
    "small-bi-cls-max-mean": ("all-MiniLM-L6-v2", "small", False, 3, "F32", "cls+max+mean", 1),
    "small-ce": ("ms-marco-MiniLM-L-6-v2", "small", True, 4, "F32", None, 1),
}


def r32(a):
    return [float(np.float32(v)) for v in np.asarray(a).ravel()]


def fixtures(shared):
    models = os.path.join(shared, "models")
    vocab = load_vocab(os.path.join(models, "all-MiniLM-L6-v2", "vocab.txt"))
    max_len = 256  # sentence_bert_config.json of all-MiniLM-L6-v2
    ids = [encode_single(t, vocab, max_len) for t in TEXTS]
    pairs = [encode_pair(QUERY, d, vocab, 512) for d in DOCS]
    out = {
        "generator": "tools/reference/bert_reference.py (torch %s, float64 forward)" % torch.__version__,
        "texts": TEXTS, "ids": ids,
        "query": QUERY, "documents": DOCS,
        "pair_ids": [p[0] for p in pairs], "pair_type_ids": [p[1] for p in pairs],
        "variants": {},
    }
    for name, (like, arch, ce, seed, dtype, pooling, shards) in VARIANTS.items():
        cfg = architecture(os.path.join(models, like), "small" if arch == "small" else arch)
        files, w = checkpoint(cfg, ce, seed, dtype, shards)
        v = {"like": like, "arch": arch, "cross_encoder": ce, "seed": seed, "dtype": dtype, "shards": shards,
             "sha256": {f: hashlib.sha256(b).hexdigest() for f, b in files.items()}}
        if ce:
            hidden, _ = bert_forward(w, cfg, "bert.", [p[0] for p in pairs], [p[1] for p in pairs])
            v["logits"] = r32(classify(w, cfg, hidden))
        else:
            v["pooling"] = pooling
            hidden, mask = bert_forward(w, cfg, "", ids, [[0] * len(s) for s in ids])
            emb = pool(hidden, mask, pooling, True)
            v["embeddings"] = [r32(e) for e in emb]
            if name == "minilm-bi":
                # Per-token last hidden states of two inputs of different lengths.
                v["hidden_states"] = {str(k): [r32(hidden[k, j]) for j in range(len(ids[k]))] for k in (0, 4)}
            cos = emb @ emb.T
            v["max_offdiag_cosine"] = float((cos - 2 * torch.eye(len(ids), dtype=cos.dtype)).max())
        out["variants"][name] = v
        print(name, "ok", file=sys.stderr)
    return out


# ---------------------------------------------------------------- ONNX export

class OnnxBert(torch.nn.Module):
    """hf_encoder (+ the classification head) as a module torch.onnx can trace."""

    def __init__(self, w, cfg, prefix, cross_encoder):
        super().__init__()
        self.cfg, self.prefix, self.ce = cfg, prefix, cross_encoder
        self.w = torch.nn.ParameterDict({k.replace(".", "__"): torch.nn.Parameter(torch.from_numpy(np.array(v)), requires_grad=False)
                                         for k, v in w.items()})

    def p(self, n, pre=True):
        return self.w[((self.prefix if pre else "") + n).replace(".", "__")]

    def forward(self, input_ids, attention_mask, token_type_ids):
        x = hf_encoder(self.p, self.cfg, input_ids, attention_mask, token_type_ids)
        if not self.ce:
            return x
        pooled = torch.tanh(torch.nn.functional.linear(x[:, 0], self.p("pooler.dense.weight"), self.p("pooler.dense.bias")))
        return torch.nn.functional.linear(pooled, self.p("classifier.weight", False), self.p("classifier.bias", False))


def export_onnx(shared, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    models = os.path.join(shared, "models")
    for name, output in (("minilm-bi", "last_hidden_state"), ("minilm-ce", "logits")):
        like, arch, ce, seed, dtype, _, shards = VARIANTS[name]
        cfg = architecture(os.path.join(models, like), arch)
        _, w = checkpoint(cfg, ce, seed, dtype, shards)
        model = OnnxBert(w, cfg, "bert." if ce else "", ce).eval()
        ids = torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]])
        args = (ids, (ids != 0).long(), torch.zeros_like(ids))
        path = os.path.join(out_dir, name + ".onnx")
        axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
                "token_type_ids": {0: "batch", 1: "sequence"},
                output: {0: "batch", 1: "sequence"} if not ce else {0: "batch"}}
        torch.onnx.export(model, args, path, opset_version=14, input_names=["input_ids", "attention_mask", "token_type_ids"],
                          output_names=[output], dynamic_axes=axes)
        print("wrote", path, file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", required=True, help="the shared assets folder (holds models/all-MiniLM-L6-v2)")
    ap.add_argument("--out", help="write the expected-outputs fixture JSON here")
    ap.add_argument("--checkpoint", nargs=2, metavar=("VARIANT", "DIR"), help="write one variant's weight file(s) into DIR")
    ap.add_argument("--onnx", metavar="OUT", help="export the MiniLM-L6 bi- and cross-encoder to ONNX (opset 14) into OUT")
    a = ap.parse_args()
    if a.out:
        data = fixtures(a.shared)
        with open(a.out, "w") as f:
            json.dump(data, f, separators=(",", ":"))
    if a.checkpoint:
        name, d = a.checkpoint
        like, arch, ce, seed, dtype, _, shards = VARIANTS[name]
        files, _ = checkpoint(architecture(os.path.join(a.shared, "models", like), arch), ce, seed, dtype, shards)
        os.makedirs(d, exist_ok=True)
        for f, b in files.items():
            with open(os.path.join(d, f), "wb") as fh:
                fh.write(b)
    if a.onnx:
        export_onnx(a.shared, a.onnx)


if __name__ == "__main__":
    main()
