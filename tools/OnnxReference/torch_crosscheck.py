#!/usr/bin/python3
"""Cross-checks the ONNX Runtime parity fixtures against an independent PyTorch forward pass.

Converts each packaged ONNX export's initializers into Hugging Face BertModel weights (the MatMul
weights are anonymous [in, out] initializers: each one's name comes from the bias its Add node
consumes), runs tools/reference/bert_reference.py's HF-semantics encoder on the fixture ids in float64
(padded batches, additive mask), pools as the model card says, and prints the worst 1 - cos against
the fixture's per-token states and pooled vectors. With --safetensors it also writes a Funnel-loadable
model folder per model (weights as F32 safetensors), for running Funnel on the real weights before it
can load ONNX.

    dotnet run -c Release --project tools/OnnxReference -- --extract /tmp/parity-onnx
    /usr/bin/python3 tools/OnnxReference/torch_crosscheck.py --shared ../shared --onnx-dir /tmp/parity-onnx \
        [--fixtures tests/Funnel.Tests/Fixtures/onnx-parity] [--safetensors /tmp/parity-models]

Needs Debian's python3-torch and python3-onnx; exits 1 when any 1 - cos exceeds 1e-5.
"""
import argparse
import json
import os
import shutil
import sys

import numpy as np
import onnx
import torch
from onnx import numpy_helper

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
import bert_reference as ref  # noqa: E402

MODELS = {"all-MiniLM-L6-v2": "mean", "snowflake-arctic-embed-xs": "cls"}
LIMIT = 1e-5


def hf_weights(path):
    """{HF BertModel name: float32 array} from an ONNX export."""
    m = onnx.load(path)
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    consumers = {}
    for node in m.graph.node:
        for i in node.input:
            consumers.setdefault(i, []).append(node)
    w = {n: a for n, a in inits.items() if n.startswith(("embeddings.", "encoder.", "pooler.")) and n != "embeddings.position_ids"}
    for node in m.graph.node:
        if node.op_type != "MatMul" or node.input[1] not in inits:
            continue
        (add,) = [c for c in consumers[node.output[0]] if c.op_type == "Add"]
        (bias,) = [i for i in add.input if i.endswith(".bias")]
        w[bias[: -len(".bias")] + ".weight"] = inits[node.input[1]].T.copy()  # [in, out] -> torch's [out, in]
    return w


def read_fixture(folder, name):
    with open(os.path.join(folder, name + ".json"), encoding="utf-8") as f:
        meta = json.load(f)
    raw = open(os.path.join(folder, meta["data"]["file"]), "rb").read()
    n, h = len(meta["texts"]), meta["hidden_size"]
    pooled = np.frombuffer(raw, dtype="<f4", count=n * h).reshape(n, h)
    states = np.frombuffer(raw, dtype="<f2", offset=n * h * 4)
    rows, at = [], 0
    for t in meta["texts"]:
        k = len(t["positions"])
        rows.append(states[at * h:(at + k) * h].reshape(k, h).astype(np.float64))
        at += k
    return meta, pooled.astype(np.float64), rows


def one_minus_cos(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return 1 - (a * b).sum(-1) / np.sqrt((a * a).sum(-1) * (b * b).sum(-1))


def write_folder(out, shared, name, meta, w):
    """A sentence-transformers folder Funnel loads: the shared MiniLM config and tokenizer files, the model's pooling and length."""
    like = os.path.join(shared, "models", "all-MiniLM-L6-v2")
    os.makedirs(os.path.join(out, "1_Pooling"), exist_ok=True)
    for f in ("config.json", "vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "modules.json"):
        shutil.copy(os.path.join(like, f), os.path.join(out, f))
    with open(os.path.join(out, "model.safetensors"), "wb") as f:
        f.write(ref.safetensors_bytes([(n, list(a.shape), a.astype("<f4").tobytes()) for n, a in sorted(w.items())], "F32"))
    pooling = meta["pooling"]
    with open(os.path.join(out, "1_Pooling", "config.json"), "w") as f:
        json.dump({"word_embedding_dimension": meta["hidden_size"], "pooling_mode_cls_token": pooling == "cls",
                   "pooling_mode_mean_tokens": pooling == "mean", "pooling_mode_max_tokens": False,
                   "pooling_mode_mean_sqrt_len_tokens": False}, f)
    with open(os.path.join(out, "sentence_bert_config.json"), "w") as f:
        json.dump({"max_seq_length": meta["max_length"], "do_lower_case": False}, f)
    prompts = {"query": meta["query_prompt"]} if meta["query_prompt"] else {}
    with open(os.path.join(out, "config_sentence_transformers.json"), "w") as f:
        json.dump({"prompts": prompts, "default_prompt_name": None}, f)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", required=True)
    ap.add_argument("--onnx-dir", required=True, help="holds {model}.onnx (OnnxReference --extract)")
    ap.add_argument("--fixtures", default=os.path.join("tests", "Funnel.Tests", "Fixtures", "onnx-parity"))
    ap.add_argument("--safetensors", metavar="DIR", help="also write DIR/{model}/, a Funnel-loadable folder")
    a = ap.parse_args()
    with open(os.path.join(a.shared, "models", "all-MiniLM-L6-v2", "config.json")) as f:
        cfg = json.load(f)
    failed = False
    for name, pooling in MODELS.items():
        meta, pooled, rows = read_fixture(a.fixtures, name)
        assert meta["pooling"] == pooling
        w = hf_weights(os.path.join(a.onnx_dir, name + ".onnx"))
        assert w["embeddings.word_embeddings.weight"].shape[1] == cfg["hidden_size"] == meta["hidden_size"]
        t = {k: torch.from_numpy(v.astype(np.float64)) for k, v in w.items()}
        worst_state = worst_pooled = 0.0
        order = sorted(range(len(meta["texts"])), key=lambda i: len(meta["texts"][i]["ids"]))
        for start in range(0, len(order), 16):  # similar lengths per batch keep the padding small
            batch = order[start:start + 16]
            ids = [meta["texts"][i]["ids"] for i in batch]
            with torch.no_grad():
                mask = ref.pad([[1] * len(s) for s in ids], 0)
                hidden = ref.hf_encoder(lambda n: t[n], cfg, ref.pad(ids, 0), mask, torch.zeros_like(mask))
                vec = ref.pool(hidden, mask, pooling, normalize=True).numpy()
            for j, i in enumerate(batch):
                positions = meta["texts"][i]["positions"]
                worst_state = max(worst_state, one_minus_cos(hidden[j, positions].numpy(), rows[i]).max())
                worst_pooled = max(worst_pooled, float(one_minus_cos(vec[j], pooled[i])))
        print(f"{name}: {len(meta['texts'])} texts; PyTorch float64 vs ONNX Runtime fixture: "
              f"per-token 1 - cos <= {worst_state:.2e}, pooled 1 - cos <= {worst_pooled:.2e}")
        failed |= max(worst_state, worst_pooled) > LIMIT
        if a.safetensors:
            write_folder(os.path.join(a.safetensors, name), a.shared, name, meta, w)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
