"""A multilayer perceptron encoder for flat features or small images."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from contrastkit.models._checks import positive_int

__all__ = ["MLP"]


class MLP(nn.Module):
    """Linear layers with (optional) batch norm and ReLU between them; flattens its input.

    ``in_features -> hidden[0] -> ... -> hidden[-1] -> out_features``: each hidden layer is
    ``Linear -> BatchNorm1d -> ReLU`` (``Linear -> ReLU`` with ``batch_norm=False``); the last
    layer is a plain ``Linear``. An input ``(N, ...)`` is flattened to ``(N, in_features)``, so
    images ``(N, C, H, W)`` work with ``in_features = C * H * W``.

    Args:
        in_features: Number of values per input row after flattening.
        out_features: Width of the output embedding.
        hidden: Widths of the hidden layers; ``()`` gives one linear layer.
        batch_norm: Put a ``BatchNorm1d`` after each hidden linear layer (in training mode it
            needs batches of at least 2 rows).

    Example:
        >>> import torch
        >>> model = MLP(64, 32, hidden=(128,))
        >>> model(torch.rand(5, 1, 8, 8)).shape
        torch.Size([5, 32])
    """

    def __init__(
        self,
        in_features: int,
        out_features: int = 128,
        *,
        hidden: Sequence[int] = (256,),
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        self.in_features = positive_int("in_features", in_features)
        self.out_features = positive_int("out_features", out_features)
        if isinstance(hidden, str | bytes) or not isinstance(hidden, Sequence):
            raise ValueError(f"`hidden` must be a sequence of ints, e.g. (256,); got {hidden!r}.")
        widths = [positive_int(f"hidden[{i}]", h) for i, h in enumerate(hidden)]
        if not isinstance(batch_norm, bool):
            raise ValueError(f"`batch_norm` must be True or False; got {batch_norm!r}.")
        layers: list[nn.Module] = []
        width = in_features
        for h in widths:
            layers.append(nn.Linear(width, h, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm1d(h))
            layers.append(nn.ReLU(inplace=True))
            width = h
        layers.append(nn.Linear(width, out_features))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """Embed a batch.

        Args:
            x: Shape ``(N, ...)`` with ``in_features`` values per row.

        Returns:
            Shape ``(N, out_features)``.

        Raises:
            ValueError: If ``x`` is not a floating-point tensor with a batch dimension and
                ``in_features`` values per row.
        """
        if not isinstance(x, Tensor) or x.dim() < 1:
            raise ValueError(
                f"MLP input must be a tensor of shape (N, ...) with {self.in_features} values "
                f"per row; got {type(x).__name__ if not isinstance(x, Tensor) else 'a scalar'}."
            )
        if not x.is_floating_point():
            raise ValueError(
                f"MLP input must be floating point; got dtype {x.dtype}. Use x.float()."
            )
        flat = x.reshape(x.shape[0], -1)
        if flat.shape[1] != self.in_features:
            raise ValueError(
                f"MLP expects in_features={self.in_features} values per row; got input of shape "
                f"{tuple(x.shape)} ({flat.shape[1]} values per row). Build it with "
                f"MLP(in_features={flat.shape[1]}, ...) or reshape the input."
            )
        out: Tensor = self.net(flat)
        return out
