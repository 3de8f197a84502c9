#!/usr/bin/python3
"""ONNX fixtures for Funnel's ONNX weight import (tests/Funnel.Tests/Fixtures/onnx).

Exports tiny Hugging Face-semantics BERTs with torch.onnx.export the way real exports look
(nn.Linear on 3-D inputs -> MatMul with an anonymous [in, out] initializer + bias Add; on 2-D
inputs -> Gemm with transB=1 and the named [out, in] weight), in several opsets and both node-name
styles, and rewrites some of them with python3-onnx: dynamic int8 quantization in the exact pattern
onnxruntime's quantize_dynamic writes, float16, external data, and broken graphs the loader must
refuse. Weights follow the seeded specification of tools/reference (bert_reference.py). Expected
outputs come from bert_reference's independent float64 forward pass; every fixture is also run
through onnxruntime-node (./ort_run.js) and checked against them.

    (cd tools/onnx-fixtures && npm ci)          # onnxruntime-node, for the cross-check
    /usr/bin/python3 tools/onnx-fixtures/make_fixtures.py --shared ../shared \
        --out tests/Funnel.Tests/Fixtures/onnx

See tools/onnx-fixtures/README.md.
"""
import argparse
import copy
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
import bert_reference as ref  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

# ---------------------------------------------------------------- configurations

TINY = dict(vocab_size=512, max_position_embeddings=64, hidden_size=32, num_hidden_layers=2,
            num_attention_heads=4, intermediate_size=64, type_vocab_size=2)
# For the broken graphs: as small as a BERT gets, so each bad fixture is a few KB.
MICRO = dict(vocab_size=16, max_position_embeddings=8, hidden_size=8, num_hidden_layers=1,
             num_attention_heads=2, intermediate_size=16, type_vocab_size=2)

BI_SEED, CE_SEED, MICRO_SEED = 5, 6, 7


def hf_config(arch, cross_encoder):
    cfg = {"architectures": ["BertForSequenceClassification" if cross_encoder else "BertModel"],
           "model_type": "bert", "hidden_act": "gelu", "layer_norm_eps": 1e-12, "pad_token_id": 0,
           "position_embedding_type": "absolute", "torch_dtype": "float32", **arch}
    if cross_encoder:
        cfg.update({"id2label": {"0": "LABEL_0"}, "label2id": {"LABEL_0": 0},
                    "sbert_ce_default_activation_function": "torch.nn.modules.linear.Identity"})
    return cfg


def cut_vocab(bert_vocab_path, size):
    """A WordPiece vocabulary of `size` tokens cut from bert-base-uncased: the specials, the ASCII
    characters and their ## forms, then the most frequent words (bert's own order)."""
    with open(bert_vocab_path, encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f]
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = [t for t in lines[999:1093]]  # '!' .. '~'
    tokens += chars + ["##" + c for c in "abcdefghijklmnopqrstuvwxyz0123456789"]
    for t in lines[1996:]:
        if len(tokens) == size:
            break
        if t not in tokens:
            tokens.append(t)
    assert len(tokens) == size and len(set(tokens)) == size
    return tokens


# ---------------------------------------------------------------- HF-semantics BERT modules

class Embeddings(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        h = c["hidden_size"]
        self.word_embeddings = torch.nn.Embedding(c["vocab_size"], h, padding_idx=0)
        self.position_embeddings = torch.nn.Embedding(c["max_position_embeddings"], h)
        self.token_type_embeddings = torch.nn.Embedding(c["type_vocab_size"], h)
        self.LayerNorm = torch.nn.LayerNorm(h, eps=c["layer_norm_eps"])
        self.register_buffer("position_ids", torch.arange(c["max_position_embeddings"]).expand((1, -1)))

    def forward(self, input_ids, token_type_ids):
        position_ids = self.position_ids[:, : input_ids.size(1)]
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        x = x + self.position_embeddings(position_ids)
        return self.LayerNorm(x)


class SelfAttention(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        h = c["hidden_size"]
        self.heads, self.d = c["num_attention_heads"], h // c["num_attention_heads"]
        self.query, self.key, self.value = (torch.nn.Linear(h, h) for _ in range(3))

    def split(self, y):
        return y.view(y.size()[:-1] + (self.heads, self.d)).permute(0, 2, 1, 3)

    def forward(self, x, mask):
        q, k, v = self.split(self.query(x)), self.split(self.key(x)), self.split(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.d) + mask
        ctx = torch.matmul(torch.softmax(scores, dim=-1), v).permute(0, 2, 1, 3).contiguous()
        return ctx.view(ctx.size()[:-2] + (self.heads * self.d,))


class DenseNorm(torch.nn.Module):
    """BertSelfOutput / BertOutput: dense, residual, LayerNorm."""

    def __init__(self, c, n_in):
        super().__init__()
        self.dense = torch.nn.Linear(n_in, c["hidden_size"])
        self.LayerNorm = torch.nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])

    def forward(self, x, residual):
        return self.LayerNorm(self.dense(x) + residual)


class Attention(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.self = SelfAttention(c)
        self.output = DenseNorm(c, c["hidden_size"])

    def forward(self, x, mask):
        return self.output(self.self(x, mask), x)


class Intermediate(torch.nn.Module):
    def __init__(self, c, approximate):
        super().__init__()
        self.dense = torch.nn.Linear(c["hidden_size"], c["intermediate_size"])
        self.approximate = approximate

    def forward(self, x):
        return torch.nn.functional.gelu(self.dense(x), approximate=self.approximate)


class Layer(torch.nn.Module):
    def __init__(self, c, approximate):
        super().__init__()
        self.attention = Attention(c)
        self.intermediate = Intermediate(c, approximate)
        self.output = DenseNorm(c, c["intermediate_size"])

    def forward(self, x, mask):
        a = self.attention(x, mask)
        return self.output(self.intermediate(a), a)


class Encoder(torch.nn.Module):
    def __init__(self, c, approximate):
        super().__init__()
        self.layer = torch.nn.ModuleList([Layer(c, approximate) for _ in range(c["num_hidden_layers"])])

    def forward(self, x, mask):
        for layer in self.layer:
            x = layer(x, mask)
        return x


class Pooler(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = torch.nn.Linear(c["hidden_size"], c["hidden_size"])

    def forward(self, hidden):
        return torch.tanh(self.dense(hidden[:, 0]))


class BertModel(torch.nn.Module):
    """HF BertModel: returns (last_hidden_state, pooler_output)."""

    def __init__(self, c, approximate="none", pooler=True):
        super().__init__()
        self.embeddings = Embeddings(c)
        self.encoder = Encoder(c, approximate)
        self.pooler = Pooler(c) if pooler else None

    def forward(self, input_ids, attention_mask, token_type_ids):
        x = self.embeddings(input_ids, token_type_ids)
        mask = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        hidden = self.encoder(x, mask)
        return (hidden, self.pooler(hidden)) if self.pooler is not None else hidden


class PrefixedBertModel(torch.nn.Module):
    """A bi-encoder whose encoder sits under `bert.` (as when BertForSequenceClassification's trunk is exported)."""

    def __init__(self, c):
        super().__init__()
        self.bert = BertModel(c)

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.bert(input_ids, attention_mask, token_type_ids)


class BertForSequenceClassification(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.bert = BertModel(c)
        self.classifier = torch.nn.Linear(c["hidden_size"], 1)

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.classifier(self.bert(input_ids, attention_mask, token_type_ids)[1])


# ---------------------------------------------------------------- GPT-2-like model (refused)

class Conv1D(torch.nn.Module):
    """GPT-2's Conv1D: weight [in, out], y = addmm(bias, x, weight) (exports as Gemm, transB=0)."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(n_in, n_out) * 0.1)
        self.bias = torch.nn.Parameter(torch.randn(n_out) * 0.1)

    def forward(self, x):
        shape = x.size()[:-1] + (self.weight.size(1),)
        return torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight).view(shape)


class Gpt2Attention(torch.nn.Module):
    def __init__(self, n):
        super().__init__()
        self.c_attn, self.c_proj = Conv1D(n, 3 * n), Conv1D(n, n)

    def forward(self, x):
        q, k, v = self.c_attn(x).split(x.size(-1), dim=2)
        t = x.size(1)
        causal = torch.tril(torch.ones(t, t, dtype=torch.bool))
        w = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(x.size(-1))
        w = torch.where(causal, w, torch.full_like(w, -1e4))
        return self.c_proj(torch.matmul(torch.softmax(w, -1), v))


class Gpt2Mlp(torch.nn.Module):
    def __init__(self, n):
        super().__init__()
        self.c_fc, self.c_proj = Conv1D(n, 4 * n), Conv1D(4 * n, n)

    def forward(self, x):
        return self.c_proj(torch.nn.functional.gelu(self.c_fc(x), approximate="tanh"))


class Gpt2Block(torch.nn.Module):
    def __init__(self, n):
        super().__init__()
        self.ln_1, self.ln_2 = torch.nn.LayerNorm(n), torch.nn.LayerNorm(n)
        self.attn, self.mlp = Gpt2Attention(n), Gpt2Mlp(n)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Gpt2(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        n = c["hidden_size"]
        self.wte = torch.nn.Embedding(c["vocab_size"], n)
        self.wpe = torch.nn.Embedding(c["max_position_embeddings"], n)
        self.h = torch.nn.ModuleList([Gpt2Block(n)])
        self.ln_f = torch.nn.LayerNorm(n)

    def forward(self, input_ids, attention_mask, token_type_ids):
        x = self.wte(input_ids) + self.wpe(torch.arange(input_ids.size(1))[None])
        for block in self.h:
            x = block(x)
        return self.ln_f(x)


# ---------------------------------------------------------------- export

INPUTS = ["input_ids", "attention_mask", "token_type_ids"]


def load_weights(module, weights, export_prefix, weight_prefix):
    """Copies the seeded tensors (named `weight_prefix` + HF name) into the module (`export_prefix` + HF name)."""
    state = module.state_dict()
    for key in state:
        if key.endswith("position_ids"):
            continue
        hf = key[len(export_prefix):] if key.startswith(export_prefix) else key
        src = weight_prefix + hf if not hf.startswith("classifier.") else hf
        state[key] = torch.from_numpy(np.array(weights[src]))
    module.load_state_dict(state)
    return module.eval()


def export(module, path, opset, legacy_names, outputs, sample_ids, fold=True):
    """torch.onnx.export with dynamic batch and sequence axes. legacy_names: the PyTorch < 1.13 style
    (nodes `MatMul_34`, anonymous values numbered `927`), as in all-MiniLM-L6-v2's export."""
    ids = torch.tensor(sample_ids)
    args = (ids, (ids != 0).long(), torch.zeros_like(ids))
    axes = {n: {0: "batch", 1: "sequence"} for n in INPUTS}
    for o in outputs:
        axes[o] = {0: "batch", 1: "sequence"} if o == "last_hidden_state" else {0: "batch"}
    pass_name = "_jit_pass_onnx_assign_scoped_names_for_node_and_value"
    original = getattr(torch._C, pass_name)
    if legacy_names:
        setattr(torch._C, pass_name, lambda graph: None)
    try:
        torch.onnx.export(module, args, path, opset_version=opset, input_names=INPUTS,
                          output_names=outputs, dynamic_axes=axes, do_constant_folding=fold)
    finally:
        setattr(torch._C, pass_name, original)
    if legacy_names:
        model = onnx.load(path)
        number_anonymous_values(model.graph)
        onnx.save(model, path)


def number_anonymous_values(graph):
    """`onnx::MatMul_27` -> `27`: what PyTorch 1.10 called anonymous values."""
    def rename(name):
        return name.rsplit("_", 1)[1] if name.startswith("onnx::") else name
    for node in graph.node:
        node.input[:] = [rename(n) for n in node.input]
        node.output[:] = [rename(n) for n in node.output]
    for t in graph.initializer:
        t.name = rename(t.name)
    for v in list(graph.output) + list(graph.value_info):
        v.name = rename(v.name)


# ---------------------------------------------------------------- graph rewrites (python3-onnx)

def initializer(graph, name):
    return next(t for t in graph.initializer if t.name == name)


def quantize_weight(g, name, w, weight_type, axis):
    """Adds `name`_quantized / _scale / _zero_point initializers for the float weight w as onnxruntime's
    quantizer computes them: int8 symmetric (zero point 0, range ±127) or uint8 asymmetric (range
    including 0), over the whole tensor (axis None) or per index of the axis that is kept (axis =
    the one reduced). Returns the dequantized weight, (q - zp) * scale in float32."""
    if weight_type == "int8":
        absmax = np.abs(w).max(axis=axis, keepdims=True) if axis is not None else np.abs(w).max()
        scale = (2 * absmax / 254).astype(np.float32)
        zp = np.zeros_like(scale, dtype=np.int8)
        q = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
    else:
        lo = np.minimum(w.min(axis=axis, keepdims=True) if axis is not None else w.min(), 0)
        hi = np.maximum(w.max(axis=axis, keepdims=True) if axis is not None else w.max(), 0)
        scale = ((hi - lo) / 255).astype(np.float32)
        zp = np.clip(np.round(-lo / scale), 0, 255).astype(np.uint8)
        q = np.clip(np.round(w / scale) + zp, 0, 255).astype(np.uint8)
    scale_t = scale.reshape(-1) if axis is not None else np.array(scale, dtype=np.float32)
    zp_t = zp.reshape(-1) if axis is not None else np.array(zp.reshape(()), dtype=zp.dtype)
    g.initializer.extend([numpy_helper.from_array(q, name + "_quantized"),
                          numpy_helper.from_array(scale_t, name + "_scale"),
                          numpy_helper.from_array(zp_t, name + "_zero_point")])
    return ((q.astype(np.int32) - zp.astype(np.int32)).astype(np.float32) * scale.astype(np.float32)).astype(np.float32)


def quantize_weights_qdq(model):
    """Weight-only QDQ: every MatMul weight W [in, out] becomes DequantizeLinear(Wq, scale, zp, axis=1) and every
    Gemm weight (transB=1, [out, in]) DequantizeLinear(..., axis=0): int8 symmetric, one scale per output;
    activations stay float. Returns the dequantized weights."""
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    dequantized, nodes = {}, []
    for node in g.node:
        if node.op_type in ("MatMul", "Gemm") and node.input[1] in inits:
            name, keep = node.input[1], 1 if node.op_type == "MatMul" else 0
            dequantized[name] = quantize_weight(g, name, numpy_helper.to_array(inits[name]), "int8", 1 - keep)
            nodes.append(helper.make_node("DequantizeLinear", [name + "_quantized", name + "_scale", name + "_zero_point"],
                                          [name + "_dequantized"], name + "_DequantizeLinear", axis=keep))
            node.input[1] = name + "_dequantized"
        nodes.append(node)
    keep = [t for t in g.initializer if t.name not in dequantized]
    del g.initializer[:]
    g.initializer.extend(keep)
    del g.node[:]
    g.node.extend(nodes)
    return dequantized


def quantize_dynamic_like_ort(model, weight_type, per_channel):
    """Rewrites every MatMul with a constant [in, out] weight, and the embedding Gathers, as
    onnxruntime.quantization.quantize_dynamic does (IntegerOps mode):
      X -> DynamicQuantizeLinear -> (Xq, Xs, Xzp)   (shared by all MatMuls reading X)
      MatMulInteger(Xq, Wq, Xzp, Wzp) -> Cast(float) -> Mul(., Mul(Xs, Ws))
      Gather(Wq, ids) -> DequantizeLinear(., Ws, Wzp)
    Weights: int8 symmetric (zero point 0, range ±127) or uint8 asymmetric; per tensor, or per
    output column for MatMuls when per_channel. Returns the dequantized float32 weights by HF name
    ((q - zp) * scale, [out, in] for linear weights) for the expected outputs."""
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    new_nodes, dequantized, quantized_inputs = [], {}, {}

    def quantize(name, w, axis):
        return quantize_weight(g, name, w, weight_type, axis)

    for node in g.node:
        if node.op_type == "Gather" and node.input[0] in inits and inits[node.input[0]].data_type == TensorProto.FLOAT:
            name = node.input[0]
            w = numpy_helper.to_array(inits[name])
            dequantized[name] = quantize(name, w, None)
            out = node.output[0]
            gathered = helper.make_node("Gather", [name + "_quantized", node.input[1]], [out + "_quantized"], node.name,
                                        axis=next((a.i for a in node.attribute if a.name == "axis"), 0))
            deq = helper.make_node("DequantizeLinear", [out + "_quantized", name + "_scale", name + "_zero_point"], [out],
                                   out + "_DequantizeLinear")
            new_nodes += [gathered, deq]
        elif node.op_type == "MatMul" and node.input[1] in inits:
            x, wname, out = node.input[0], node.input[1], node.output[0]
            w = numpy_helper.to_array(inits[wname])
            dequantized[wname] = quantize(wname, w, 0 if per_channel else None)  # axis 0 reduced: one scale per column
            if x not in quantized_inputs:
                quantized_inputs[x] = (x + "_quantized", x + "_scale", x + "_zero_point")
                new_nodes.append(helper.make_node("DynamicQuantizeLinear", [x], list(quantized_inputs[x]), x + "_QuantizeLinear"))
            xq, xs, xzp = quantized_inputs[x]
            qname = node.name + "_quant" if node.name else ""
            mm_out = out + "_output_quantized"
            new_nodes += [
                helper.make_node("MatMulInteger", [xq, wname + "_quantized", xzp, wname + "_zero_point"], [mm_out], qname),
                helper.make_node("Cast", [mm_out], [mm_out + "_cast_output"], mm_out + "_cast", to=TensorProto.FLOAT),
                helper.make_node("Mul", [xs, wname + "_scale"], [qname + "_scales_mul:0"], qname + "_scales_mul"),
                helper.make_node("Mul", [mm_out + "_cast_output", qname + "_scales_mul:0"], [out], qname + "_output_scale_mul"),
            ]
        else:
            new_nodes.append(node)
    used = {i for n in new_nodes for i in n.input}
    keep = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
    del g.node[:]
    g.node.extend(topological(new_nodes, [i.name for i in g.input] + [t.name for t in keep]))
    model.opset_import[0].version = max(model.opset_import[0].version, 11)
    return dequantized


def topological(nodes, available):
    have, ordered, pending = set(available), [], list(nodes)
    while pending:
        rest = []
        for n in pending:
            if all(i == "" or i in have for i in n.input):
                ordered.append(n)
                have.update(n.output)
            else:
                rest.append(n)
        assert len(rest) < len(pending), "cycle"
        pending = rest
    return ordered


def to_float16(model):
    """The whole graph in float16 with float32 inputs/outputs kept (as onnxconverter-common's
    convert_float_to_float16(keep_io_types=True) leaves it): float initializers and Constants
    become FLOAT16, Casts to float become Casts to float16, and a Cast back to float32 ends each
    output. The stored weights are float16(seeded value)."""
    g = model.graph
    for t in g.initializer:
        if t.data_type == TensorProto.FLOAT:
            t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float16), t.name))
    for n in g.node:
        for a in n.attribute:
            if n.op_type == "Constant" and a.name == "value" and a.t.data_type == TensorProto.FLOAT:
                # float32's finfo.min (the attention mask's fill) becomes float16's, as a float16 export writes it.
                value = np.clip(numpy_helper.to_array(a.t), -65504, 65504).astype(np.float16)
                a.t.CopyFrom(numpy_helper.from_array(value, a.t.name))
            if n.op_type == "Cast" and a.name == "to" and a.i == TensorProto.FLOAT:
                a.i = TensorProto.FLOAT16
    for o in g.output:
        inner = o.name + "_float16"
        for n in g.node:
            n.output[:] = [inner if x == o.name else x for x in n.output]
            n.input[:] = [inner if x == o.name else x for x in n.input]
        g.node.append(helper.make_node("Cast", [inner], [o.name], o.name + "_cast_to_float32", to=TensorProto.FLOAT))
    del g.value_info[:]


# ---------------------------------------------------------------- reference outputs

def sha256_f32(array):
    return hashlib.sha256(np.ascontiguousarray(array, dtype="<f4").tobytes()).hexdigest()


def bi_reference(weights, cfg, ids):
    hidden, _ = ref.bert_forward(weights, cfg, "", ids, [[0] * len(s) for s in ids])
    return [[ref.r32(hidden[b, t]) for t in range(len(s))] for b, s in enumerate(ids)]


def ce_reference(weights, cfg, pairs):
    hidden, _ = ref.bert_forward(weights, cfg, "bert.", [p[0] for p in pairs], [p[1] for p in pairs])
    return ref.r32(ref.classify(weights, cfg, hidden))


def ort_run(path, batch_ids, batch_types):
    """All outputs of the model at `path` on one padded batch, through onnxruntime-node."""
    request = {"model": os.path.abspath(path), "ids": batch_ids, "types": batch_types}
    out = subprocess.run(["node", os.path.join(HERE, "ort_run.js")], input=json.dumps(request).encode(),
                         capture_output=True, check=True)
    return json.loads(out.stdout)


def padded(seqs):
    n = max(len(s) for s in seqs)
    return [s + [0] * (n - len(s)) for s in seqs]


def ort_hidden(path, ids):
    result = ort_run(path, padded(ids), padded([[0] * len(s) for s in ids]))
    data = np.array(result["last_hidden_state"]["data"], dtype=np.float32).reshape(result["last_hidden_state"]["dims"])
    return [data[b, : len(s)] for b, s in enumerate(ids)]


def ort_logits(path, pairs):
    result = ort_run(path, padded([p[0] for p in pairs]), padded([p[1] for p in pairs]))
    return np.array(result["logits"]["data"], dtype=np.float32)


def max_diff_hidden(actual, expected):
    return max(float(np.abs(np.array(a) - np.array(e)).max()) for a, e in zip(actual, expected))


def min_cosine_hidden(actual, expected):
    worst = 1.0
    for a, e in zip(actual, expected):
        a, e = np.array(a, dtype=np.float64), np.array(e, dtype=np.float64)
        cos = (a * e).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(e, axis=1)
        worst = min(worst, float(cos.min()))
    return worst


# ---------------------------------------------------------------- fixtures

TEXTS = [
    "",
    "This is an example sentence",
    "Each sentence is converted, and the vectors are compared with each other.",
    "The quick brown fox jumps over the lazy dog, while the cat watches from the window sill and the "
    "bird sings in the tree outside; nobody notices the mouse sneaking into the kitchen to steal cheese.",
]
QUERY = "How many people live in Berlin?"
DOCS = ["Berlin had a population of 3,520,031 registered inhabitants.", "Berlin is well known for its museums.", ""]

# name: (head, opset, legacy node names, export prefix, rewrite)
VARIANTS = {
    "bi-op11-legacy": ("bi", 11, True, "", None),
    "bi-op13-legacy": ("bi", 13, True, "", None),
    "bi-op14": ("bi", 14, False, "", None),
    "bi-op17": ("bi", 17, False, "", None),
    "bi-prefixed-op13": ("bi", 13, False, "bert.", None),
    "bi-prefixed-op14-legacy": ("bi", 14, True, "bert.", None),
    "ce-op11-legacy": ("ce", 11, True, "", None),
    "ce-op14": ("ce", 14, False, "", None),
    "ce-op17": ("ce", 17, False, "", None),
    "bi-op14-int8": ("bi", 14, False, "", "int8"),
    "bi-op13-legacy-uint8-per-channel": ("bi", 13, True, "", "uint8-per-channel"),
    "ce-op14-int8": ("ce", 14, False, "", "int8"),
    "bi-op14-fp16": ("bi", 14, False, "", "fp16"),
    "bi-op13-qdq-weights": ("bi", 13, False, "", "qdq"),
    "bi-op14-external": ("bi", 14, False, "", "external"),
    "bi-op14-unfolded": ("bi", 14, False, "", "unfolded"),
}


def write_support_files(out, shared, vocab_tokens):
    """bi/ and ce/: config.json and tokenizer files of the tiny models (no weights); bad/: the micro model's vocabulary."""
    st = os.path.join(shared, "models", "all-MiniLM-L6-v2")
    for head, ce in (("bi", False), ("ce", True)):
        d = os.path.join(out, head)
        os.makedirs(d, exist_ok=True)
        write_json(os.path.join(d, "config.json"), hf_config(TINY, ce), indent=2)
        with open(os.path.join(d, "vocab.txt"), "w", encoding="utf-8", newline="\n") as f:
            f.write("\n".join(vocab_tokens) + "\n")
        write_json(os.path.join(d, "tokenizer_config.json"), {"do_lower_case": True, "model_max_length": 64,
                                                              "tokenizer_class": "BertTokenizer"}, indent=2)
        if not ce:
            shutil.copy(os.path.join(st, "modules.json"), d)
            os.makedirs(os.path.join(d, "1_Pooling"), exist_ok=True)
            write_json(os.path.join(d, "1_Pooling", "config.json"),
                       {"word_embedding_dimension": 32, "pooling_mode_mean_tokens": True}, indent=2)
    bad = os.path.join(out, "bad")
    os.makedirs(bad, exist_ok=True)
    with open(os.path.join(bad, "vocab.txt"), "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(vocab_tokens[:MICRO["vocab_size"]]) + "\n")


def write_json(path, data, indent=None):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        json.dump(data, f, indent=indent, separators=None if indent else (",", ":"))
        f.write("\n")


def build_model(head, cfg, weights, prefix):
    if head == "ce":
        return load_weights(BertForSequenceClassification(cfg), weights, "", "")
    if prefix:
        return load_weights(PrefixedBertModel(cfg), weights, "bert.", "")
    return load_weights(BertModel(cfg), weights, "", "")


def check_module_matches_reference(module, head, cfg, weights, ids, pairs):
    """The exported module (float32) against bert_reference's float64 forward: proves the module tree
    has HF semantics before its export becomes a fixture."""
    with torch.no_grad():
        if head == "bi":
            batch = ref.pad(ids, 0)
            out = module(batch, ref.pad([[1] * len(s) for s in ids], 0), torch.zeros_like(batch))[0]
            expected = bi_reference(weights, cfg, ids)
            got = [out[b, : len(s)].numpy() for b, s in enumerate(ids)]
            assert max_diff_hidden(got, expected) < 1e-4, "module differs from the reference"
        else:
            batch = ref.pad([p[0] for p in pairs], 0)
            mask = ref.pad([[1] * len(p[0]) for p in pairs], 0)
            out = module(batch, mask, ref.pad([p[1] for p in pairs], 0))[:, 0].numpy()
            assert np.abs(out - np.array(ce_reference(weights, cfg, pairs))).max() < 1e-4


def make_variants(out, shared, vocab):
    bi_cfg, ce_cfg = hf_config(TINY, False), hf_config(TINY, True)
    _, bi_w = ref.checkpoint(bi_cfg, False, BI_SEED, "F32", 1)
    _, ce_w = ref.checkpoint(ce_cfg, True, CE_SEED, "F32", 1)
    ids = [ref.encode_single(t, vocab, TINY["max_position_embeddings"]) for t in TEXTS]
    pairs = [ref.encode_pair(QUERY, d, vocab, TINY["max_position_embeddings"]) for d in DOCS]
    assert max(len(s) for s in ids) == TINY["max_position_embeddings"]
    models_dir = os.path.join(out, "models")
    os.makedirs(models_dir, exist_ok=True)
    result = {
        "generator": "tools/onnx-fixtures/make_fixtures.py (torch %s, onnx %s)" % (torch.__version__, onnx.__version__),
        "texts": TEXTS, "ids": ids, "query": QUERY, "documents": DOCS,
        "pair_ids": [p[0] for p in pairs], "pair_type_ids": [p[1] for p in pairs],
        "seeds": {"bi": BI_SEED, "ce": CE_SEED}, "variants": {}, "weights": {},
    }
    for name, (head, opset, legacy, prefix, rewrite) in VARIANTS.items():
        cfg, w = (bi_cfg, bi_w) if head == "bi" else (ce_cfg, ce_w)
        module = build_model(head, cfg, w, prefix)
        check_module_matches_reference(module, head, cfg, w, ids, pairs)
        path = os.path.join(models_dir, name + ".onnx")
        outputs = (["last_hidden_state", "pooler_output"] if not legacy else ["last_hidden_state"]) if head == "bi" else ["logits"]
        export(module, path, opset, legacy, outputs, [ids[1], ids[1][:3] + [0] * (len(ids[1]) - 3)], fold=rewrite != "unfolded")
        model = onnx.load(path)
        stored = {k: np.array(v) for k, v in w.items()}  # HF name (the checkpoint's prefix) -> what a loader must read
        entry = {"head": head, "opset": opset, "node_names": "legacy" if legacy else "module-path",
                 "prefix": "bert." if head == "ce" or prefix else "", "file": "models/" + name + ".onnx"}
        lossy = rewrite in ("int8", "uint8-per-channel", "fp16")
        if rewrite in ("int8", "uint8-per-channel", "qdq"):
            deq = quantize_weights_qdq(model) if rewrite == "qdq" else \
                quantize_dynamic_like_ort(model, "int8" if rewrite == "int8" else "uint8", rewrite.endswith("per-channel"))
            stored = dequantized_hf(stored, deq, model_before=onnx.load(path))
            onnx.save(model, path)
        elif rewrite == "fp16":
            to_float16(model)
            stored = {k: v.astype(np.float16).astype(np.float32) for k, v in stored.items()}
            onnx.save(model, path)
        elif rewrite == "external":
            data = name + ".onnx_data"
            if os.path.exists(os.path.join(models_dir, data)):
                os.remove(os.path.join(models_dir, data))  # onnx appends to an existing data file
            onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True, location=data, size_threshold=256)
            entry["external_data"] = "models/" + data
        key = head + ("-" + rewrite if rewrite in ("int8", "uint8-per-channel", "fp16", "qdq") else "")
        entry["weights"] = key
        result["variants"][name] = entry
        fresh = key not in result["weights"]
        if fresh:
            result["weights"][key] = expected_outputs(head, cfg, stored, ids, pairs)
        expected = result["weights"][key]
        if head == "bi":
            got = ort_hidden(path, ids)
            diff = max_diff_hidden(got, expected["hidden_states"])
        else:
            got = ort_logits(path, pairs)
            diff = float(np.abs(got - np.array(expected["logits"])).max())
        if lossy:
            # onnxruntime quantizes the activations too (or computes in float16), so its outputs are the same
            # model only approximately; Funnel computes in float32 on the stored weights, as the reference does.
            if head == "bi":
                expected["ort_hidden_states"] = [[r8(row) for row in seq] for seq in got]
                cos = min_cosine_hidden(got, expected["hidden_states"])
                assert cos > 0.999, "%s: onnxruntime's min cosine to the reference is %g" % (name, cos)
            else:
                expected["ort_logits"] = r8(got)
        else:
            assert diff < 1e-4, "%s: onnxruntime differs from the reference by %g" % (name, diff)
        print(name, "ok (onnxruntime max |diff| %.2g)" % diff, file=sys.stderr)
    return result


def r8(values):
    """float32 values to 8 significant digits (the tests compare with tolerances far above that)."""
    return [float("%.8g" % v) for v in np.asarray(values, dtype=np.float32).ravel()]


def expected_outputs(head, cfg, stored, ids, pairs):
    """The reference's outputs on exactly the weights a loader reads, and each tensor's SHA-256 (float32 LE, HF layout)."""
    out = {"sha256": {k: sha256_f32(v) for k, v in stored.items()}}
    if head == "bi":
        out["hidden_states"] = [[r8(row) for row in seq] for seq in bi_reference(stored, cfg, ids)]
    else:
        out["logits"] = r8(ce_reference(stored, cfg, pairs))
    return out


def dequantized_hf(stored, deq, model_before):
    """Replaces the float weights that quantization rewrote by their dequantized values, under HF names:
    anonymous MatMul weights are named by the bias Add that consumes their MatMul's output."""
    g = model_before.graph
    consumers = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    out = dict(stored)
    for n in g.node:
        if n.op_type == "MatMul" and n.input[1] in deq:
            add = consumers[n.output[0]][0]
            bias = next(i for i in add.input if i.endswith(".bias"))
            hf = bias[: -len(".bias")] + ".weight"
            assert hf in out and out[hf].shape == deq[n.input[1]].T.shape
            out[hf] = deq[n.input[1]].T.copy()
        elif n.op_type == "Gemm" and n.input[1] in deq:  # transB=1: stored [out, in] under its HF name
            assert n.input[1] in out and out[n.input[1]].shape == deq[n.input[1]].shape
            out[n.input[1]] = deq[n.input[1]]
        elif n.op_type == "Gather" and n.input[0] in deq:
            assert n.input[0] in out
            out[n.input[0]] = deq[n.input[0]]
    return out


# ---------------------------------------------------------------- broken graphs (micro model)

def make_bad(out):
    """Graphs the loader must refuse (the tests name what each error must say). Most are the micro model
    (bad/config.json beside them) with one thing broken."""
    d = os.path.join(out, "bad")
    os.makedirs(d, exist_ok=True)
    cfg = hf_config(MICRO, False)
    write_json(os.path.join(d, "config.json"), cfg, indent=2)
    _, w = ref.checkpoint(cfg, False, MICRO_SEED, "F32", 1)
    sample = [[2, 5, 6, 3]]
    tmp = os.path.join(d, "_base.onnx")

    def base(legacy=False, approximate="none"):
        module = load_weights(BertModel(cfg, approximate=approximate), w, "", "")
        export(module, tmp, 14, legacy, ["last_hidden_state", "pooler_output"], sample)
        model = onnx.load(tmp)
        os.remove(tmp)
        return model

    def replace(model, name, array):
        t = initializer(model.graph, name)
        t.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(array), name))

    def save(model, name):
        onnx.save(model, os.path.join(d, name + ".onnx"))

    save(base(), "micro")  # the valid one the others are broken from

    m = base()  # NaN in a named weight
    a = numpy_helper.to_array(initializer(m.graph, "encoder.layer.0.output.LayerNorm.weight")).copy()
    a[3] = np.nan
    replace(m, "encoder.layer.0.output.LayerNorm.weight", a)
    save(m, "nan-weight")

    m = base()  # +Inf in an anonymous MatMul weight
    mm = next(n for n in m.graph.node if n.name == "/encoder/layer.0/intermediate/dense/MatMul")
    a = numpy_helper.to_array(initializer(m.graph, mm.input[1])).copy()
    a[1, 2] = np.inf
    replace(m, mm.input[1], a)
    save(m, "inf-weight")

    m = base()  # a bias shorter than its MatMul weight's columns
    replace(m, "encoder.layer.0.intermediate.dense.bias", w["encoder.layer.0.intermediate.dense.bias"][:-1])
    save(m, "bias-shape")

    m = base()  # a named tensor of the wrong shape
    replace(m, "embeddings.position_embeddings.weight", w["embeddings.position_embeddings.weight"][:-1])
    save(m, "wrong-shape")

    m = base()  # the node path says query, the bias says key
    next(n for n in m.graph.node if n.name == "/encoder/layer.0/attention/self/key/MatMul").name = "/encoder/layer.0/attention/self/query/MatMul_1"
    save(m, "name-disagrees")

    m = base(legacy=True)  # two MatMuls whose bias Adds both say query (legacy names: only biases name them)
    add = next(n for n in m.graph.node if n.op_type == "Add" and "encoder.layer.0.attention.self.key.bias" in n.input)
    add.input[:] = ["encoder.layer.0.attention.self.query.bias" if i.endswith("key.bias") else i for i in add.input]
    save(m, "two-candidates")

    m = base(legacy=True)  # a MatMul weight nothing names: its bias Add removed, no module path
    mm = next(n for n in m.graph.node if n.op_type == "MatMul" and any(t.name == n.input[1] for t in m.graph.initializer))
    add = next(n for n in m.graph.node if mm.output[0] in n.input)
    for n in m.graph.node:
        n.input[:] = [mm.output[0] if i == add.output[0] else i for i in n.input]
    m.graph.node.remove(add)
    save(m, "unnamed-matmul")
    print("unnamed-matmul: node %s, initializer %s" % (mm.name, mm.input[1]), file=sys.stderr)

    save(base(approximate="tanh"), "tanh-gelu")  # config.json says exact "gelu"
    save(fused_graph(cfg, w), "fused-ort")  # what onnxruntime's transformer optimizer leaves

    torch.manual_seed(0)
    export(Gpt2(cfg).eval(), os.path.join(d, "gpt2-like.onnx"), 14, False, ["last_hidden_state"], sample)

    # External data whose location leaves the model's folder.
    ext = onnx.load(os.path.join(out, "models", "bi-op14-external.onnx"), load_external_data=False)
    for t in ext.graph.initializer:
        for kv in t.external_data:
            if kv.key == "location":
                kv.value = "../bi-op14-external.onnx_data"
    save(ext, "external-escapes")


def fused_graph(cfg, w):
    """The op pattern of an ORT-optimized BERT (EmbedLayerNormalization, Attention, SkipLayerNormalization,
    BiasGelu): never run, only refused."""
    h = cfg["hidden_size"]
    t = lambda name, a: numpy_helper.from_array(np.ascontiguousarray(a, dtype=np.float32), name)
    p = "encoder.layer.0."
    qkv_w = np.concatenate([w[p + "attention.self.%s.weight" % n].T for n in ("query", "key", "value")], axis=1)
    qkv_b = np.concatenate([w[p + "attention.self.%s.bias" % n] for n in ("query", "key", "value")])
    inits = [t(n, w[n]) for n in ("embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
                                  "embeddings.token_type_embeddings.weight", "embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias")]
    inits += [t("Attention_0_qkv_weight", qkv_w), t("Attention_0_qkv_bias", qkv_b),
              t("onnx::MatMul_100", w[p + "attention.output.dense.weight"].T), t(p + "attention.output.dense.bias", w[p + "attention.output.dense.bias"]),
              t(p + "attention.output.LayerNorm.weight", w[p + "attention.output.LayerNorm.weight"]),
              t(p + "attention.output.LayerNorm.bias", w[p + "attention.output.LayerNorm.bias"]),
              t("onnx::MatMul_101", w[p + "intermediate.dense.weight"].T), t(p + "intermediate.dense.bias", w[p + "intermediate.dense.bias"]),
              t("onnx::MatMul_102", w[p + "output.dense.weight"].T), t(p + "output.dense.bias", w[p + "output.dense.bias"]),
              t(p + "output.LayerNorm.weight", w[p + "output.LayerNorm.weight"]), t(p + "output.LayerNorm.bias", w[p + "output.LayerNorm.bias"])]
    ms = "com.microsoft"
    nodes = [
        helper.make_node("EmbedLayerNormalization", ["input_ids", "token_type_ids", "embeddings.word_embeddings.weight",
                                                     "embeddings.position_embeddings.weight", "embeddings.token_type_embeddings.weight",
                                                     "embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias", "attention_mask"],
                         ["embed_out", "mask_index"], "EmbedLayerNormalization_0", domain=ms, epsilon=1e-12),
        helper.make_node("Attention", ["embed_out", "Attention_0_qkv_weight", "Attention_0_qkv_bias", "mask_index"], ["attn_out"],
                         "Attention_0", domain=ms, num_heads=cfg["num_attention_heads"]),
        helper.make_node("MatMul", ["attn_out", "onnx::MatMul_100"], ["attn_proj"], "MatMul_0"),
        helper.make_node("SkipLayerNormalization", ["attn_proj", "embed_out", p + "attention.output.LayerNorm.weight",
                                                    p + "attention.output.LayerNorm.bias", p + "attention.output.dense.bias"],
                         ["ln1"], "SkipLayerNorm_0", domain=ms, epsilon=1e-12),
        helper.make_node("MatMul", ["ln1", "onnx::MatMul_101"], ["inter"], "MatMul_1"),
        helper.make_node("BiasGelu", ["inter", p + "intermediate.dense.bias"], ["gelu"], "BiasGelu_0", domain=ms),
        helper.make_node("MatMul", ["gelu", "onnx::MatMul_102"], ["out"], "MatMul_2"),
        helper.make_node("SkipLayerNormalization", ["out", "ln1", p + "output.LayerNorm.weight", p + "output.LayerNorm.bias",
                                                    p + "output.dense.bias"], ["last_hidden_state"], "SkipLayerNorm_1", domain=ms, epsilon=1e-12),
    ]
    ints = lambda n: helper.make_tensor_value_info(n, TensorProto.INT32, ["batch", "sequence"])
    graph = helper.make_graph(nodes, "torch_jit", [ints("input_ids"), ints("attention_mask"), ints("token_type_ids")],
                              [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", h])], inits)
    model = helper.make_model(graph, producer_name="onnxruntime.transformers", producer_version="1.17.0",
                              opset_imports=[helper.make_opsetid("", 14), helper.make_opsetid(ms, 1)])
    return model


# ---------------------------------------------------------------- tensor encodings (protobuf reader)

def make_encodings(out):
    """One graph-less model whose initializers use every encoding the reader supports: raw_data and the
    typed fields (float_data, int32_data for FLOAT16/BFLOAT16/INT8/UINT8, int64_data)."""
    rng = np.random.default_rng(11)
    f = rng.standard_normal(6).astype(np.float32)
    h = f.astype(np.float16)
    bf_bits = ref.to_bf16_bits(f)
    i8 = np.array([-128, -1, 0, 1, 127, 5], dtype=np.int8)
    u8 = np.array([0, 1, 128, 255, 7, 9], dtype=np.uint8)
    i64 = np.array([-(1 << 40), -1, 0, 1, 1 << 40, 3], dtype=np.int64)
    tensors, expected = [], {}

    def add(name, dtype, dims, vals, raw, values_f32):
        t = TensorProto(name=name, data_type=dtype, dims=dims)
        if raw:
            t.raw_data = vals.tobytes()
        elif dtype == TensorProto.FLOAT:
            t.float_data[:] = vals.tolist()
        elif dtype == TensorProto.INT64:
            t.int64_data[:] = vals.tolist()
        else:  # FLOAT16 and BFLOAT16 as their bits, INT8 and UINT8 as values, one per int32_data element (onnx.proto)
            t.int32_data[:] = (vals.view(np.uint16) if dtype == TensorProto.FLOAT16 else vals).astype(np.int64).tolist()
        tensors.append(t)
        expected[name] = {"dims": dims, "values": [float(v) for v in values_f32]}

    for raw in (True, False):
        s = "raw" if raw else "typed"
        add("float_" + s, TensorProto.FLOAT, [2, 3], f, raw, f)
        add("float16_" + s, TensorProto.FLOAT16, [2, 3], h, raw, h.astype(np.float32))
        add("bfloat16_" + s, TensorProto.BFLOAT16, [6], bf_bits, raw, (bf_bits.astype(np.uint32) << 16).view(np.float32))
        add("int8_" + s, TensorProto.INT8, [6], i8, raw, i8)
        add("uint8_" + s, TensorProto.UINT8, [3, 2], u8, raw, u8)
        add("int64_" + s, TensorProto.INT64, [6], i64, raw, i64)
    graph = helper.make_graph([], "encodings", [], [], tensors)
    model = helper.make_model(graph, producer_name="make_fixtures.py", opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, os.path.join(out, "encodings.onnx"))
    write_json(os.path.join(out, "encodings.json"), expected, indent=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", required=True, help="the shared assets folder (holds models/all-MiniLM-L6-v2)")
    ap.add_argument("--out", required=True, help="the fixtures folder (tests/Funnel.Tests/Fixtures/onnx)")
    a = ap.parse_args()
    torch.manual_seed(0)
    tokens = cut_vocab(os.path.join(a.shared, "models", "all-MiniLM-L6-v2", "vocab.txt"), TINY["vocab_size"])
    vocab = {t: i for i, t in enumerate(tokens)}
    os.makedirs(a.out, exist_ok=True)
    write_support_files(a.out, a.shared, tokens)
    write_json(os.path.join(a.out, "onnx_reference.json"), make_variants(a.out, a.shared, vocab))
    make_bad(a.out)
    make_encodings(a.out)


if __name__ == "__main__":
    main()
