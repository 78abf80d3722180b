"""Modality-pairwise InfoNCE: one InfoNCE per pair of modalities, summed or averaged (MER)."""

from __future__ import annotations

from itertools import combinations
from typing import Literal

import torch
from torch import Tensor

from contrastkit import core
from contrastkit.core import validation as v
from contrastkit.core.validation import Impl, Reduction
from contrastkit.distributed import ProcessGroup, shard
from contrastkit.losses._base import ContrastiveLoss, Paper
from contrastkit.losses._inputs import check_common, prepare_one, requires_grad
from contrastkit.losses.infonce import infonce_scaled

Aggregate = Literal["sum", "mean"]
AGGREGATES: tuple[Aggregate, ...] = ("sum", "mean")


def multimodal_pairwise(
    *modalities: Tensor,
    temperature: float | Tensor = 0.07,
    symmetric: bool = True,
    aggregate: Aggregate = "sum",
    normalize: bool = True,
    reduction: Reduction = "mean",
    chunk_size: int | None = None,
    impl: Impl = "auto",
    gather_distributed: bool = False,
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""InfoNCE between every pair of ``k >= 2`` modalities, summed (or averaged) over the pairs.

    Call it as ``multimodal_pairwise(text, audio, vision)``; row ``i`` of every modality belongs
    to sample ``i``. For each unordered pair :math:`(m, m')`, :math:`m < m'`, with
    :math:`s^{mm'}_{ij} = \langle z^m_i, z^{m'}_j \rangle / \tau`,

    .. math::

        \ell^{mm'}_i = \tfrac12 \Big( \log \sum_j e^{s^{mm'}_{ij}} - s^{mm'}_{ii}
            + \log \sum_j e^{s^{mm'}_{ji}} - s^{mm'}_{ii} \Big), \qquad
        \ell_i = \sum_{m < m'} \ell^{mm'}_i

    (``symmetric=False`` keeps only the :math:`m \to m'` direction, the earlier modality as
    query; ``aggregate="mean"`` divides by the :math:`k(k-1)/2` pairs). Each pair is a separate
    softmax over the other modality's batch, computed by the InfoNCE engine (tiled, memory
    linear in the batch); it equals the sum of :func:`~contrastkit.losses.infonce` over the
    pairs. Under ``gather_distributed`` each rank computes its own rows of every pair.

    The paper (Franceschini et al., MER) sums one InfoNCE per modality pair (text-audio,
    text-vision, audio-vision) with the same utterance in the other modality as positive and
    the other utterances of the batch as negatives. Its code is not public; whether each pair
    is symmetric, and the temperature, are unverified: the defaults here are the CLIP-style
    symmetric pair and :math:`\tau = 0.07`. Contrast :func:`~contrastkit.losses.gram`, which
    scores all modalities of a sample jointly.

    Args:
        *modalities: ``k >= 2`` tensors of shape ``(N, D)``, paired by row.
        temperature: :math:`\tau > 0`; a float or a 0-dim tensor (may require grad).
        symmetric: Average both directions within each pair.
        aggregate: ``"sum"`` (the paper) or ``"mean"`` over the modality pairs.
        normalize: L2-normalize every modality first (cosine similarity).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (shape ``(N,)``, :math:`\ell_i`).
        chunk_size: Rows and columns per tile; ``None`` chooses.
        impl: ``"auto"``, ``"dense"`` or ``"tiled"``.
        gather_distributed: Loss of the global batch over all ranks of ``process_group``
            (see :mod:`contrastkit.distributed`).
        process_group: The group to gather over; ``None`` is the default group.

    Returns:
        The loss, in float32 for low-precision inputs (statistics dtype).

    Raises:
        ValueError: If fewer than two modalities are given or an input is malformed.

    Example:
        >>> import torch
        >>> text, audio, vision = torch.randn(4, 8), torch.randn(4, 8), torch.randn(4, 8)
        >>> multimodal_pairwise(text, audio, vision).shape
        torch.Size([])

    References:
        Franceschini et al., 2022, "Multimodal Emotion Recognition with Modality-Pairwise
        Unsupervised Contrastive Loss" (ICPR 2022), arXiv:2207.11482.
    """

    def check() -> list[Tensor]:
        if len(modalities) < 2:
            raise ValueError(
                f"multimodal_pairwise needs k >= 2 `modalities` (positional tensors, one per "
                f"modality); got k = {len(modalities)}. Call it as "
                "multimodal_pairwise(text, audio, vision)."
            )
        v.check_temperature("temperature", temperature)
        v.check_choice("aggregate", aggregate, AGGREGATES)
        check_common(reduction, chunk_size, impl)
        zs = [prepare_one(f"modalities[{m}]", z, normalize=False) for m, z in enumerate(modalities)]
        for m in range(1, len(zs)):
            v.check_same_width("modalities[0]", zs[0], f"modalities[{m}]", zs[m])
            v.check_same_batch("modalities[0]", zs[0], f"modalities[{m}]", zs[m])
        dt = zs[0].dtype
        for z in zs:
            dt = torch.promote_types(dt, z.dtype)
        return [z.to(device=zs[0].device, dtype=dt) for z in zs]

    def shapes(zs: list[Tensor]) -> dict[str, Tensor | None]:
        named: dict[str, Tensor | None] = {f"modalities[{m}]": z for m, z in enumerate(zs)}
        # infonce_scaled gathers under the names "query" / "key"; all modalities share the
        # per-rank row counts, so the first one stands for both.
        return {**named, "query": zs[0], "key": zs[0]}

    zs, sh = shard(
        gather_distributed,
        process_group,
        check,
        shapes,
        {
            "k": len(modalities),
            "symmetric": symmetric,
            "aggregate": aggregate,
            "reduction": reduction,
            "temperature_grad": requires_grad(temperature),
        },
    )
    scale = 1.0 / core.as_scale(temperature, zs[0])
    pairs = list(combinations(range(len(zs)), 2))
    total: Tensor | None = None
    for m, mm in pairs:
        term = infonce_scaled(
            zs[m], zs[mm], scale, symmetric, normalize, None, reduction, chunk_size, impl, sh
        )
        total = term if total is None else total + term
    assert total is not None
    return total / len(pairs) if aggregate == "mean" else total


class MultimodalPairwiseLoss(ContrastiveLoss):
    """Module form of :func:`multimodal_pairwise`; called as ``loss(*modalities)``."""

    catalog_id = "multimodal_pairwise"
    family = "H. more than two modalities"
    paper = Paper(
        "Franceschini et al.",
        2022,
        "2207.11482",
        "Multimodal Emotion Recognition with Modality-Pairwise Unsupervised Contrastive Loss",
    )
    inputs = ("modalities[0]", "modalities[1]", "*modalities[2:]")
    supports_distributed = True
    distributed = "split"

    def __init__(
        self,
        *,
        temperature: float = 0.07,
        symmetric: bool = True,
        aggregate: Aggregate = "sum",
        normalize: bool = True,
        reduction: Reduction = "mean",
        chunk_size: int | None = None,
        impl: Impl = "auto",
        gather_distributed: bool = False,
        process_group: ProcessGroup | None = None,
    ) -> None:
        super().__init__()
        v.check_temperature("temperature", temperature)
        v.check_choice("aggregate", aggregate, AGGREGATES)
        check_common(reduction, chunk_size, impl)
        self.temperature, self.symmetric, self.aggregate = temperature, symmetric, aggregate
        self.normalize, self.reduction = normalize, reduction
        self.chunk_size, self.impl = chunk_size, impl
        self.gather_distributed, self.process_group = gather_distributed, process_group

    def forward(self, *modalities: Tensor) -> Tensor:
        """Compute the loss; see :func:`multimodal_pairwise`."""
        return multimodal_pairwise(
            *modalities,
            temperature=self.temperature,
            symmetric=self.symmetric,
            aggregate=self.aggregate,
            normalize=self.normalize,
            **self.common(),
        )
