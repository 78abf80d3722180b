"""The projection head of SimCLR: the loss is applied to its output, not to the encoder's."""

from __future__ import annotations

from torch import Tensor, nn

from contrastkit.models._checks import positive_int

__all__ = ["ProjectionHead"]


class ProjectionHead(nn.Module):
    """``Linear -> BatchNorm1d -> ReLU -> Linear``, the two-layer head of SimCLR.

    Chen et al. (2020) show that applying the contrastive loss to ``g(h)`` rather than to the
    representation ``h`` improves ``h`` for downstream tasks; ``h`` is kept for evaluation.

    Args:
        in_features: Width of the representation ``h``.
        out_features: Width of the projection ``g(h)``.
        hidden: Width of the hidden layer; ``None`` uses ``in_features``.

    Example:
        >>> import torch
        >>> head = ProjectionHead(128, 64)
        >>> head(torch.rand(8, 128)).shape
        torch.Size([8, 64])

    References:
        Chen, Kornblith, Norouzi & Hinton, 2020, "A Simple Framework for Contrastive Learning
        of Visual Representations", arXiv:2002.05709.
    """

    def __init__(
        self, in_features: int, out_features: int = 64, *, hidden: int | None = None
    ) -> None:
        super().__init__()
        width = in_features if hidden is None else hidden
        for name, value in (
            ("in_features", in_features),
            ("out_features", out_features),
            ("hidden", width),
        ):
            positive_int(name, value)
        self.in_features = in_features
        self.out_features = out_features
        self.net = nn.Sequential(
            nn.Linear(in_features, width, bias=False),
            nn.BatchNorm1d(width),
            nn.ReLU(inplace=True),
            nn.Linear(width, out_features),
        )

    def forward(self, x: Tensor) -> Tensor:
        """Project a batch of representations.

        Args:
            x: Shape ``(N, in_features)``.

        Returns:
            Shape ``(N, out_features)``.

        Raises:
            ValueError: If ``x`` is not a floating-point ``(N, in_features)`` tensor.
        """
        if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[1] != self.in_features:
            got = f"shape {tuple(x.shape)}" if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(
                f"ProjectionHead expects input of shape (N, {self.in_features}) "
                f"(in_features={self.in_features}); got {got}."
            )
        if not x.is_floating_point():
            raise ValueError(f"ProjectionHead input must be floating point; got dtype {x.dtype}.")
        out: Tensor = self.net(x)
        return out
