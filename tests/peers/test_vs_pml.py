"""contrastkit's label-aware losses against pytorch-metric-learning (PML).

Mapping (pytorch_metric_learning/losses/*.py, reducers/*.py, utils/loss_and_miner_utils.py):

* Pairs: with ``labels`` only, ``get_all_pairs_indices`` takes positives ``(a, p)`` with
  ``y_a == y_p, a != p`` and negatives ``(a, n)`` with ``y_a != y_n``. With ``ref_emb`` and a
  separate ``ref_labels`` tensor the diagonal is NOT removed (``matches.fill_diagonal_(0)`` only
  when ``ref_labels is labels``): pairs are all (query, ref) with equal / different labels.
* Similarity: the default ``CosineSimilarity`` L2-normalizes embeddings and ref_emb.
* ``SupConLoss(temperature)``: per anchor ``-mean_{p} [s_ap - logsumexp_{j in P(a) u N(a)} s_aj]``
  (self excluded; row max subtracted but detached, which cancels), reduced by
  ``AvgNonZeroReducer`` = mean over anchors with a non-zero loss. When every anchor has a
  positive and a negative every loss is > 0, so this is the plain mean = our
  ``supcon(variant="out")``. (The ``+ finfo.tiny`` on the positive count is negligible.)
* ``NTXentLoss(temperature)``: per positive PAIR ``-log(e^{s_ap} / (e^{s_ap} + sum_{n in N(a)}
  e^{s_an}))`` (``+ finfo.tiny`` inside the log, negligible), ``reduction_type="pos_pair"``
  with the default ``MeanReducer`` = mean over positive pairs = our ``multi_positive``.
* ``SelfSupervisedLoss(NTXentLoss(t))(z1, z2)`` (symmetric=True) calls the loss on
  ``cat([z1, z2])`` with labels ``cat([arange(N), arange(N)])``: 2N pairs ``(i, i +- N)``, all
  other 2N-2 views as negatives, mean over 2N = SimCLR NT-Xent = our ``ntxent``.
* ``SelfSupervisedLoss(NTXentLoss(t), symmetric=False)(q, k)`` = ``NTXentLoss(t)(q, arange(N),
  ref_emb=k, ref_labels=arange(N))`` = one-way ``infonce(q, k)`` (mean over N rows). Extra
  negatives: ``ref_emb=cat([k, extra])`` with ``ref_labels=cat([arange(N), N + arange(E)])``
  = ``infonce(q, cat([k, extra]))``.
"""

import pytest
import torch
from pytorch_metric_learning.losses import NTXentLoss as PMLNTXentLoss
from pytorch_metric_learning.losses import SelfSupervisedLoss
from pytorch_metric_learning.losses import SupConLoss as PMLSupConLoss

from contrastkit.losses import (
    MultiPositiveLoss,
    SupConLoss,
    infonce,
    multi_positive,
    ntxent,
    supcon,
)

pytestmark = pytest.mark.peer

SHAPES = [
    pytest.param(2, 3, id="N2-D3"),
    pytest.param(7, 5, id="N7-D5"),
    pytest.param(16, 32, id="N16-D32"),
]
IMPLS = [
    pytest.param({"impl": "dense"}, id="dense"),
    pytest.param({"impl": "tiled", "chunk_size": 3}, id="tiled-c3"),
]
# Class sizes of a (shuffled) batch, and the embedding dimension. Every anchor has at least one
# positive and one negative.
BATCHES = [
    pytest.param((2, 2), 3, id="pairs-N4-D3"),
    pytest.param((2, 2, 2, 2, 2, 2, 2, 2), 5, id="pairs-N16-D5"),
    pytest.param((2, 3, 4), 7, id="sizes234-N9-D7"),
    pytest.param((4, 3, 2, 2, 2, 3, 4, 3), 32, id="mixed-N23-D32"),
]
# multi_positive has no such requirement: classes of one sample act only as negatives.
BATCHES_WITH_SINGLETONS = [
    *BATCHES,
    pytest.param((3, 1, 2, 1, 4), 6, id="singletons-N11-D6"),
]


def _batch(sizes, d, seed=0):
    """Embeddings (N, D) and shuffled int64 labels whose classes have the given ``sizes``."""
    g = torch.Generator().manual_seed(1000 * seed + 10 * sum(sizes) + d)
    labels = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    labels = labels[torch.randperm(len(labels), generator=g)]
    return torch.randn(len(labels), d, generator=g, dtype=torch.float64), labels


def _views(n, d, seed=0):
    g = torch.Generator().manual_seed(1000 * seed + 10 * n + d)
    return [torch.randn(n, d, generator=g, dtype=torch.float64) for _ in range(2)]


def _value_and_grads(fn, inputs):
    """Run ``fn`` on fresh leaf copies of ``inputs``; return its value and grads w.r.t. them."""
    leaves = [x.detach().clone().requires_grad_(True) for x in inputs]
    out = fn(*leaves)
    return out.detach(), torch.autograd.grad(out, leaves)


@pytest.mark.parametrize("temperature", [0.1, 0.5], ids=lambda t: f"t{t}")
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("sizes", "d"), BATCHES)
def test_supcon_out_matches_pml(sizes, d, impl, temperature):
    """supcon(variant="out") equals PML's SupConLoss when every anchor has a positive."""
    x, y = _batch(sizes, d)
    ours = _value_and_grads(
        lambda e: supcon(e, y, temperature=temperature, variant="out", **impl), [x]
    )
    peer = _value_and_grads(lambda e: PMLSupConLoss(temperature=temperature)(e, y), [x])
    torch.testing.assert_close(ours, peer)


@pytest.mark.parametrize(("sizes", "d"), BATCHES)
def test_supcon_module_matches_pml(sizes, d):
    """SupConLoss() equals PML's SupConLoss() (both default to temperature 0.1)."""
    x, y = _batch(sizes, d, seed=1)
    ours = _value_and_grads(lambda e: SupConLoss()(e, y), [x])
    torch.testing.assert_close(ours, _value_and_grads(lambda e: PMLSupConLoss()(e, y), [x]))


@pytest.mark.parametrize("temperature", [0.1, 0.5], ids=lambda t: f"t{t}")
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("sizes", "d"), BATCHES_WITH_SINGLETONS)
def test_multi_positive_matches_pml_ntxent(sizes, d, impl, temperature):
    """multi_positive() equals PML's NTXentLoss called with (embeddings, labels)."""
    x, y = _batch(sizes, d, seed=2)
    ours = _value_and_grads(lambda e: multi_positive(e, y, temperature=temperature, **impl), [x])
    peer = _value_and_grads(lambda e: PMLNTXentLoss(temperature=temperature)(e, y), [x])
    torch.testing.assert_close(ours, peer)


@pytest.mark.parametrize(("sizes", "d"), BATCHES_WITH_SINGLETONS)
def test_multi_positive_module_matches_pml_ntxent(sizes, d):
    """MultiPositiveLoss(temperature=0.1) equals PML's NTXentLoss(temperature=0.1)."""
    x, y = _batch(sizes, d, seed=3)
    ours = _value_and_grads(lambda e: MultiPositiveLoss(temperature=0.1)(e, y), [x])
    peer = _value_and_grads(lambda e: PMLNTXentLoss(temperature=0.1)(e, y), [x])
    torch.testing.assert_close(ours, peer)


@pytest.mark.parametrize("temperature", [0.5, 0.07], ids=lambda t: f"t{t}")
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("n", "d"), SHAPES)
def test_ntxent_matches_pml_self_supervised(n, d, impl, temperature):
    """ntxent() equals PML's SelfSupervisedLoss(NTXentLoss) (symmetric, 2N anchors)."""
    z = _views(n, d, seed=4)
    ours = _value_and_grads(lambda a, b: ntxent(a, b, temperature=temperature, **impl), z)
    peer = _value_and_grads(SelfSupervisedLoss(PMLNTXentLoss(temperature=temperature)), z)
    torch.testing.assert_close(ours, peer)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("n", "d"), SHAPES)
def test_infonce_matches_pml_self_supervised_one_way(n, d, impl):
    """One-way infonce() equals PML's SelfSupervisedLoss(NTXentLoss, symmetric=False)."""
    z = _views(n, d, seed=5)
    ours = _value_and_grads(lambda q, k: infonce(q, k, temperature=0.2, **impl), z)
    peer = _value_and_grads(SelfSupervisedLoss(PMLNTXentLoss(temperature=0.2), symmetric=False), z)
    torch.testing.assert_close(ours, peer)


@pytest.mark.parametrize("extra", [0, 1, 5], ids=lambda e: f"E{e}")
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("n", "d"), SHAPES)
def test_infonce_extra_negatives_matches_pml_ref_emb(n, d, impl, extra):
    """infonce(q, [k; extra]) equals PML's NTXentLoss with ref_emb=[k; extra], unmatched labels."""
    q, k = _views(n, d, seed=6)
    g = torch.Generator().manual_seed(extra)
    neg = torch.randn(extra, d, generator=g, dtype=torch.float64)
    labels = torch.arange(n)
    ref_labels = torch.arange(n + extra)  # labels n.. match no query: pure negatives

    def peer_fn(q, k, neg):
        ref = torch.cat([k, neg])
        return PMLNTXentLoss(temperature=0.07)(q, labels, ref_emb=ref, ref_labels=ref_labels)

    ours = _value_and_grads(
        lambda q, k, neg: infonce(q, torch.cat([k, neg]), temperature=0.07, **impl), [q, k, neg]
    )
    torch.testing.assert_close(ours, _value_and_grads(peer_fn, [q, k, neg]))
