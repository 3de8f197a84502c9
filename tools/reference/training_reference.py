#!/usr/bin/python3
"""PyTorch reference for Funnel's training (src/Funnel/Training).

Writes tests/Funnel.Tests/Fixtures/reference/training_reference.json:

* gradients: every parameter's gradient (torch autograd, float64, dropout off) of a loss through a small
  seeded random BERT (the `small` architecture of bert_reference.py, whose checkpoints Funnel's
  SeededCheckpoint writes byte for byte): a bi-encoder (cls+max+mean pooling + Normalize,
  MultipleNegativesRankingLoss with a hard-negative column) and a cross-encoder
  (BinaryCrossEntropyLoss with pos_weight on (query, document) pairs);
* losses: each loss's value and input gradient on fixed embeddings / logits, written from
  sentence-transformers' formulas;
* adamw: three steps of torch.optim.AdamW (weight decay 0.01 on weights, none on biases and LayerNorm)
  under the linear warmup/decay schedule with clip_grad_norm_(1.0).

    /usr/bin/python3 tools/reference/training_reference.py --shared ../shared \
        --out tests/Funnel.Tests/Fixtures/reference/training_reference.json

Needs only torch and numpy (Debian's python3-torch 1.13).
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bert_reference as ref  # noqa: E402

torch.set_default_dtype(torch.float64)

TRIPLETS = [
    ("how many people live in berlin?", "berlin has about 3.5 million inhabitants.", "paris is the capital of france."),
    ("what is the boiling point of water", "water boils at 100 degrees celsius at sea level.", "ice melts when it is warm."),
    ("who wrote hamlet", "hamlet is a tragedy by william shakespeare.", "the play was staged in london last year."),
    ("is coffee bad for you", "moderate coffee drinking is safe for most adults.", "tea contains caffeine too."),
]
PAIRS = [
    ("vitamin d deficiency", "low vitamin d levels are common in winter.", 1.0),
    ("vitamin d deficiency", "the stock market fell on monday.", 0.0),
    ("statin side effects", "muscle pain is a known side effect of statins.", 1.0),
    ("statin side effects", "statins lower cholesterol.", 0.6),
    ("fish oil and the heart", "a recipe for grilled salmon with lemon.", 0.0),
]
POS_WEIGHT = 2.0


def r32(a):
    """float32 values with 9 significant digits (enough to round-trip a float32), flattened."""
    return [float("%.9g" % np.float32(v)) for v in np.asarray(a).ravel()]


def leaf_weights(w):
    return {k: torch.tensor(np.array(v), dtype=torch.float64, requires_grad=True) for k, v in w.items()}


def grads_of(weights, cfg, prefix, used_ids, max_pos):
    """{name without prefix: gradient} with the embedding tables cut to the rows that can be non-zero."""
    out = {}
    for name, t in weights.items():
        g = t.grad if t.grad is not None else torch.zeros_like(t)
        short = name[len(prefix):] if name.startswith(prefix) else name
        if short == "embeddings.word_embeddings.weight":
            out[short] = {"rows": used_ids, "values": [r32(g[i]) for i in used_ids]}
        elif short == "embeddings.position_embeddings.weight":
            out[short] = {"rows": list(range(max_pos)), "values": [r32(g[i]) for i in range(max_pos)]}
        else:
            out[short] = {"shape": list(g.shape), "values": r32(g)}
    return out


def cos_sim(a, b):
    """sentence_transformers.util.cos_sim."""
    return torch.nn.functional.normalize(a, p=2, dim=1) @ torch.nn.functional.normalize(b, p=2, dim=1).T


def pairwise_cos_sim(a, b):
    return (torch.nn.functional.normalize(a, p=2, dim=1) * torch.nn.functional.normalize(b, p=2, dim=1)).sum(-1)


def mnrl(reps, scale=20.0):
    """MultipleNegativesRankingLoss: cross-entropy of cos_sim(anchor, cat(candidates)) * scale vs arange."""
    scores = cos_sim(reps[0], torch.cat(reps[1:])) * scale
    return torch.nn.functional.cross_entropy(scores, torch.arange(scores.size(0)))


def cosent(a, b, labels, scale=20.0):
    """CoSENTLoss."""
    scores = pairwise_cos_sim(a, b) * scale
    scores = scores[:, None] - scores[None, :]
    mask = (labels[:, None] < labels[None, :]).to(scores.dtype)
    scores = scores - (1 - mask) * 1e12
    scores = torch.cat((torch.zeros(1), scores.view(-1)), dim=0)
    return torch.logsumexp(scores, dim=0)


def cosine_similarity_loss(a, b, labels):
    """CosineSimilarityLoss: MSE of torch.cosine_similarity vs labels."""
    return torch.nn.functional.mse_loss(torch.cosine_similarity(a, b), labels)


def margin_mse(q, p, negs, labels):
    """MarginMSELoss with pairwise_dot_score: margins per negative column vs labels [batch, negatives]."""
    pos = (q * p).sum(-1)
    margins = torch.stack([pos - (q * n).sum(-1) for n in negs], dim=1)
    return torch.nn.functional.mse_loss(margins, labels)


def bce(logits, labels, pos_weight):
    return torch.nn.functional.binary_cross_entropy_with_logits(logits, labels, pos_weight=torch.tensor(pos_weight))


def ce_mnrl(logits, scale=10.0):
    """Cross-encoder MultipleNegativesRankingLoss on [batch, 1 + negatives] logits, positive first, sigmoid activation."""
    scores = torch.sigmoid(logits) * scale
    return torch.nn.functional.cross_entropy(scores, torch.zeros(logits.size(0), dtype=torch.long))


def listnet(logits, labels):
    """ListNetLoss on [batch, docs] (equal list lengths): cross-entropy against softmax(labels)."""
    return torch.nn.functional.cross_entropy(logits, labels.softmax(dim=1))


def bi_encoder_case(shared, vocab):
    like = os.path.join(shared, "models", "all-MiniLM-L6-v2")
    cfg = ref.architecture(like, "small")
    _, w = ref.checkpoint(cfg, False, 3, "F32", 1)
    weights = leaf_weights(w)
    columns = [[ref.encode_single(t[c], vocab, 256) for t in TRIPLETS] for c in range(3)]
    reps = []
    for ids in columns:
        hidden, mask = ref.hf_encoder(lambda n: weights[n], cfg, ref.pad(ids, 0), ref.pad([[1] * len(s) for s in ids], 0),
                                      ref.pad([[0] * len(s) for s in ids], 0)), ref.pad([[1] * len(s) for s in ids], 0)
        reps.append(ref.pool(hidden, mask, "cls+max+mean", True))
    loss = mnrl(reps)
    loss.backward()
    flat = [i for col in columns for s in col for i in s]
    return {
        "like": "all-MiniLM-L6-v2", "seed": 3, "pooling": "cls+max+mean", "normalize": True,
        "loss": "MultipleNegativesRankingLoss", "scale": 20.0,
        "columns": columns, "value": float(loss),
        "gradients": grads_of(weights, cfg, "", sorted(set(flat)), max(len(s) for col in columns for s in col)),
    }


def cross_encoder_case(shared, vocab):
    like = os.path.join(shared, "models", "ms-marco-MiniLM-L-6-v2")
    cfg = ref.architecture(like, "small")
    _, w = ref.checkpoint(cfg, True, 4, "F32", 1)
    weights = leaf_weights(w)
    enc = [ref.encode_pair(q, d, vocab, 512) for q, d, _ in PAIRS]
    ids, types = [e[0] for e in enc], [e[1] for e in enc]
    hidden = ref.hf_encoder(lambda n: weights["bert." + n], cfg, ref.pad(ids, 0), ref.pad([[1] * len(s) for s in ids], 0), ref.pad(types, 0))
    pooled = torch.tanh(hidden[:, 0] @ weights["bert.pooler.dense.weight"].T + weights["bert.pooler.dense.bias"])
    logits = (pooled @ weights["classifier.weight"].T + weights["classifier.bias"])[:, 0]
    labels = torch.tensor([p[2] for p in PAIRS])
    loss = bce(logits, labels, POS_WEIGHT)
    loss.backward()
    flat = [i for s in ids for i in s]
    return {
        "like": "ms-marco-MiniLM-L-6-v2", "seed": 4, "loss": "BinaryCrossEntropyLoss", "pos_weight": POS_WEIGHT,
        "ids": ids, "type_ids": types, "labels": [p[2] for p in PAIRS], "value": float(loss), "logits": r32(logits.detach()),
        "gradients": grads_of(weights, cfg, "bert.", sorted(set(flat)), max(len(s) for s in ids)),
    }


def loss_cases():
    g = torch.Generator().manual_seed(7)
    batch, dim = 5, 8
    cols = [torch.randn(batch, dim, generator=g) for _ in range(4)]
    scores = torch.rand(batch, generator=g)
    margins = torch.randn(batch, 2, generator=g)
    logits = torch.randn(batch, 4, generator=g) * 2
    bce_labels = torch.tensor([1.0, 0.0, 0.3, 1.0, 0.0])
    list_labels = torch.tensor([[1.0, 0.0, 0.0, 0.5], [0.0, 1.0, 2.0, 0.0], [1.0, 1.0, 0.0, 0.0], [3.0, 2.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    cases = []

    def emb_case(name, columns, fn, labels=None, **params):
        leaves = [c.clone().requires_grad_(True) for c in columns]
        value = fn(leaves)
        value.backward()
        cases.append({"loss": name, "params": params, "columns": [r32(c) for c in columns], "batch": batch, "dim": dim,
                      "labels": None if labels is None else [r32(l) for l in labels],
                      "value": float(value), "gradients": [r32(c.grad) for c in leaves]})

    emb_case("MultipleNegativesRankingLoss", cols[:3], lambda r: mnrl(r), scale=20.0)
    emb_case("MultipleNegativesRankingLoss", cols[:2], lambda r: mnrl(r, 7.0), scale=7.0)
    emb_case("CoSENTLoss", cols[:2], lambda r: cosent(r[0], r[1], scores), labels=scores[:, None], scale=20.0)
    emb_case("CosineSimilarityLoss", cols[:2], lambda r: cosine_similarity_loss(r[0], r[1], scores), labels=scores[:, None])
    emb_case("MarginMSELoss", cols[:4], lambda r: margin_mse(r[0], r[1], r[2:], margins), labels=margins)

    def logit_case(name, fn, labels=None, **params):
        leaf = logits.clone().requires_grad_(True)
        value = fn(leaf)
        value.backward()
        cases.append({"loss": name, "params": params, "logits": r32(logits.detach()), "batch": batch, "docs": logits.size(1),
                      "labels": None if labels is None else [r32(l) for l in labels],
                      "value": float(value), "gradient": r32(leaf.grad)})

    logit_case("BinaryCrossEntropyLoss", lambda x: bce(x[:, 0], bce_labels, 3.0), labels=bce_labels[:, None], pos_weight=3.0)
    logit_case("CrossEncoderMultipleNegativesRankingLoss", lambda x: ce_mnrl(x), scale=10.0)
    logit_case("ListNetLoss", lambda x: listnet(x, list_labels), labels=list_labels)
    return cases


def adamw_case():
    """Three AdamW steps on tensors named like BERT's (decay groups as sentence-transformers / HF Trainer make them)."""
    g = torch.Generator().manual_seed(11)
    torch.set_default_dtype(torch.float32)
    names = ["encoder.layer.0.attention.output.dense.weight", "encoder.layer.0.attention.output.dense.bias",
             "encoder.layer.0.output.LayerNorm.weight", "embeddings.word_embeddings.weight"]
    shapes = [[6, 5], [6], [5], [7, 5]]
    params = [torch.nn.Parameter(torch.randn(*s, generator=g)) for s in shapes]
    initial = [r32(p.detach()) for p in params]
    decay = [not (n.endswith(".bias") or "LayerNorm" in n) for n in names]
    lr, warmup, total = 5e-2, 2, 6
    opt = torch.optim.AdamW([{"params": [p for p, d in zip(params, decay) if d], "weight_decay": 0.01},
                             {"params": [p for p, d in zip(params, decay) if not d], "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.999), eps=1e-8)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: s / max(1, warmup) if s < warmup else max(0.0, (total - s) / max(1, total - warmup)))
    steps = []
    for step in range(3):
        grads = [torch.randn(*s, generator=g) * (3.0 if step == 1 else 0.2) for s in shapes]
        for p, gr in zip(params, grads):
            p.grad = gr.clone()
        norm = torch.nn.utils.clip_grad_norm_(params, 1.0)
        lr_now = opt.param_groups[0]["lr"]
        opt.step()
        sched.step()
        steps.append({"grads": [r32(gr) for gr in grads], "norm": float(norm), "lr": lr_now,
                      "params": [r32(p.detach()) for p in params]})
    torch.set_default_dtype(torch.float64)
    return {"names": names, "shapes": shapes, "decay": decay, "lr": lr, "warmup": warmup, "total": total,
            "weight_decay": 0.01, "max_grad_norm": 1.0, "initial": initial, "steps": steps}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    vocab = ref.load_vocab(os.path.join(a.shared, "models", "all-MiniLM-L6-v2", "vocab.txt"))
    data = {
        "generator": "tools/reference/training_reference.py (torch %s, float64 autograd, dropout off)" % torch.__version__,
        "bi_encoder": bi_encoder_case(a.shared, vocab),
        "cross_encoder": cross_encoder_case(a.shared, vocab),
        "losses": loss_cases(),
        "adamw": adamw_case(),
    }
    with open(a.out, "w") as f:
        json.dump(data, f, separators=(",", ":"))
    print("wrote", a.out, file=sys.stderr)


if __name__ == "__main__":
    main()
