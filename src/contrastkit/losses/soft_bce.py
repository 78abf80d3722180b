"""SAN's soft contrastive loss: Student-t similarities, BCE against input-space soft targets."""

from __future__ import annotations

import torch
from torch import Tensor

from contrastkit.core import validation as v
from contrastkit.core.pairmap import pair_reduce
from contrastkit.core.similarity import log_student_t, sq_l2
from contrastkit.core.validation import Impl, Reduction
from contrastkit.distributed import ProcessGroup, shard
from contrastkit.losses._base import ContrastiveLoss, Paper, Requires
from contrastkit.losses._inputs import check_common, finish, gathered, prepare_one


def soft_bce(
    embeddings: Tensor,
    reference: Tensor,
    *,
    nu: float = 10.0,
    sigma: float = 1.0,
    nu_reference: float = 100.0,
    sigma_reference: float = 10.0,
    normalize: bool = False,
    reduction: Reduction = "mean",
    chunk_size: int | None = None,
    impl: Impl = "auto",
    gather_distributed: bool = False,
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""Soft contrastive BCE of SAN: pairwise Student-t similarities against soft targets.

    With the Student-t kernel on squared distances
    :math:`K(d; \nu, \sigma) = c(\nu) (1 + d / (\sigma \nu))^{-(\nu + 1)}`,
    :math:`c(\nu) = 2 \pi g(\nu)^2`, :math:`g(\nu) = \Gamma(\frac{\nu+1}{2}) /
    (\sqrt{\nu \pi} \Gamma(\frac{\nu}{2}))`, predictions
    :math:`Q_{ij} = K(\lVert z_i - z_j \rVert^2; \nu, \sigma)` and targets
    :math:`P_{ij} = K(\lVert h_i - h_j \rVert^2; \nu_r, \sigma_r)`, both symmetrized as
    :math:`X \leftarrow X + X^\top - X \circ X^\top` (:math:`2X - X^2` here),

    .. math::

        \ell_i = \frac{1}{N - 1} \sum_{j \ne i}
            -\big[P_{ij} \log Q_{ij} + (1 - P_{ij}) \log (1 - Q_{ij})\big]

    Logs are exact (log-space kernel, ``log1p``), with no ``eps``. SAN's code also sets the
    diagonal to 0 but divides by all :math:`N^2` entries (multiply by :math:`(N - 1) / N` to
    get its numbers), adds ``1e-12`` inside the logs and writes 3.14 for :math:`\pi`. Gradients
    reach ``reference`` if it requires grad (SAN does not detach its backbone features).
    SAN's two-view construction (the two augmentations of a sample placed at a tiny input
    distance) is built by the caller: stack both views in ``embeddings`` and give the view
    pairs nearly equal rows in ``reference``.

    Args:
        embeddings: Shape ``(N, D)``, latent codes :math:`z`.
        reference: Shape ``(N, D')``, input-space features :math:`h` that define the targets.
        nu: :math:`\nu` of the latent kernel (SAN: 10).
        sigma: :math:`\sigma` of the latent kernel (SAN: 1).
        nu_reference: :math:`\nu_r` of the target kernel (SAN: 100).
        sigma_reference: :math:`\sigma_r` of the target kernel (SAN: 10).
        normalize: L2-normalize ``embeddings`` first (SAN does not).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (shape ``(N,)``).
        chunk_size: Rows and columns per tile; ``None`` chooses.
        impl: ``"auto"``, ``"dense"`` or ``"tiled"``.
        gather_distributed: Loss of the global batch over all ranks (every rank evaluates the
            gathered batch; see :mod:`contrastkit.distributed`).
        process_group: The group to gather over; ``None`` is the default group.

    Example:
        >>> import torch
        >>> soft_bce(torch.randn(6, 2), torch.randn(6, 10)).shape
        torch.Size([])

    References:
        Zang et al., 2023, "Boosting Novel Category Discovery Over Domains with Soft
        Contrastive Learning and All-in-One Classifier" (SAN), arXiv:2211.11262.
    """

    def check() -> tuple[Tensor, Tensor]:
        for name, val in (
            ("nu", nu),
            ("sigma", sigma),
            ("nu_reference", nu_reference),
            ("sigma_reference", sigma_reference),
        ):
            v.check_positive_float(name, val)
        check_common(reduction, chunk_size, impl)
        z = prepare_one("embeddings", embeddings, normalize=normalize)
        h = prepare_one("reference", reference, normalize=False)
        v.check_same_batch("embeddings", z, "reference", h)
        return z, h.to(device=z.device, dtype=z.dtype)

    (z, h), sh = shard(
        gather_distributed,
        process_group,
        check,
        lambda r: {"embeddings": r[0], "reference": r[1]},
        {"reduction": reduction},
    )
    z, h = gathered(sh, "embeddings", z), gathered(sh, "reference", h)
    n = z.shape[0]

    def bce(r: list[Tensor], c: list[Tensor], p: list[Tensor], ri: Tensor, ci: Tensor) -> Tensor:
        log_q = log_student_t(sq_l2(r[0], c[0]), nu, sigma)
        q = log_q.exp()
        target = torch.exp(log_student_t(sq_l2(r[1], c[1]), nu_reference, sigma_reference))
        target = 2 * target - target * target
        loss = -(target * (log_q + torch.log(2 - q)) + (1 - target) * 2 * torch.log1p(-q))
        return torch.where(ri[:, None] == ci[None, :], 0.0, loss)

    terms, _ = pair_reduce(bce, [z, h], [z, h], chunk_size=chunk_size, impl=impl)
    return finish(
        terms / max(n - 1, 1),
        reduction,
        sh,
        "embeddings",
        valid=torch.full_like(terms, n > 1, dtype=torch.bool),
    )


class SoftBCELoss(ContrastiveLoss):
    """Module form of :func:`soft_bce`; the arguments are the same."""

    catalog_id = "soft_bce"
    family = "E. sigmoid and binary"
    paper = Paper("Zang et al.", 2023, "2211.11262", "SAN: Soft Contrastive Learning")
    inputs = ("embeddings", "reference")
    requires = Requires(teacher=True)
    supports_distributed = True

    def __init__(
        self,
        *,
        nu: float = 10.0,
        sigma: float = 1.0,
        nu_reference: float = 100.0,
        sigma_reference: float = 10.0,
        normalize: bool = False,
        reduction: Reduction = "mean",
        chunk_size: int | None = None,
        impl: Impl = "auto",
        gather_distributed: bool = False,
        process_group: ProcessGroup | None = None,
    ) -> None:
        super().__init__()
        for name, val in (
            ("nu", nu),
            ("sigma", sigma),
            ("nu_reference", nu_reference),
            ("sigma_reference", sigma_reference),
        ):
            v.check_positive_float(name, val)
        check_common(reduction, chunk_size, impl)
        self.nu, self.sigma, self.nu_reference, self.sigma_reference = (
            nu,
            sigma,
            nu_reference,
            sigma_reference,
        )
        self.normalize = normalize
        self.set_common(reduction, chunk_size, impl, gather_distributed, process_group)

    def forward(self, embeddings: Tensor, reference: Tensor) -> Tensor:
        """Compute the loss; see :func:`soft_bce`."""
        return soft_bce(
            embeddings,
            reference,
            nu=self.nu,
            sigma=self.sigma,
            nu_reference=self.nu_reference,
            sigma_reference=self.sigma_reference,
            normalize=self.normalize,
            **self.common(),
        )
