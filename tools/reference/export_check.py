#!/usr/bin/python3
"""Reads a model folder written by `funnel train` the way Hugging Face / sentence-transformers do (safetensors by tensor
name, config.json, modules.json + 1_Pooling/config.json for a bi-encoder, BertForSequenceClassification's `bert.` /
`classifier.` names and the recorded activation for a cross-encoder) and prints its outputs with the torch reference
forward pass of bert_reference.py (float64, padded batch), for comparison with `funnel embed` / `funnel rerank --pairs`.

    /usr/bin/python3 tools/reference/export_check.py --model models/stsb-bi --texts "A man is playing a guitar." "A dog runs."
    /usr/bin/python3 tools/reference/export_check.py --model models/stsb-ce --pairs "A man is playing a guitar." "A man plays."

Token ids come from bert_reference.py's minimal tokenizer (ASCII texts only).
"""
import argparse
import json
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bert_reference as ref  # noqa: E402


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    tensors = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        if e["dtype"] != "F32":
            raise SystemExit(f"{path}: tensor {name} is {e['dtype']}, expected F32")
        s, t = e["data_offsets"]
        tensors[name] = np.frombuffer(data[s:t], dtype="<f4").reshape(e["shape"])
    return tensors


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--texts", nargs="*")
    ap.add_argument("--pairs", nargs="*", help="query document query document …")
    a = ap.parse_args()
    with open(os.path.join(a.model, "config.json")) as f:
        cfg = json.load(f)
    w = read_safetensors(os.path.join(a.model, "model.safetensors"))
    vocab = ref.load_vocab(os.path.join(a.model, "vocab.txt"))
    arch = cfg["architectures"][0]
    if a.pairs:
        if arch != "BertForSequenceClassification" or len(cfg["id2label"]) != 1:
            raise SystemExit(f"{a.model}: not a one-label BertForSequenceClassification")
        activation = cfg.get("sentence_transformers", {}).get("activation_fn") or cfg.get("sbert_ce_default_activation_function")
        max_len = json.load(open(os.path.join(a.model, "tokenizer_config.json"))).get("model_max_length", 512)
        pairs = [ref.encode_pair(q, d, vocab, max_len) for q, d in zip(a.pairs[::2], a.pairs[1::2])]
        hidden, _ = ref.bert_forward(w, cfg, "bert.", [p[0] for p in pairs], [p[1] for p in pairs])
        logits = ref.classify(w, cfg, hidden)
        scores = torch.sigmoid(logits) if activation == "torch.nn.modules.activation.Sigmoid" else logits
        print(json.dumps({"activation": activation, "scores": [float(s) for s in scores]}))
        return
    modules = json.load(open(os.path.join(a.model, "modules.json")))
    pooling_path = next(m["path"] for m in modules if m["type"] == "sentence_transformers.models.Pooling")
    pc = json.load(open(os.path.join(a.model, pooling_path, "config.json")))
    modes = "+".join(m for m, key in (("cls", "pooling_mode_cls_token"), ("max", "pooling_mode_max_tokens"),
                                      ("mean", "pooling_mode_mean_tokens"), ("mean_sqrt_len", "pooling_mode_mean_sqrt_len_tokens")) if pc.get(key))
    normalize = any(m["type"] == "sentence_transformers.models.Normalize" for m in modules)
    max_len = json.load(open(os.path.join(a.model, "sentence_bert_config.json")))["max_seq_length"]
    ids = [ref.encode_single(t, vocab, max_len) for t in a.texts]
    hidden, mask = ref.bert_forward(w, cfg, "", ids, [[0] * len(s) for s in ids])
    for e in ref.pool(hidden, mask, modes, normalize):
        print(json.dumps([float(v) for v in e]))


if __name__ == "__main__":
    main()
