"""A small convolutional encoder for small images (digits, MNIST, 32 x 32 RGB)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit.models._checks import positive_int

__all__ = ["SmallCNN"]


class SmallCNN(nn.Module):
    """Three ``conv3x3 -> BatchNorm2d -> ReLU`` blocks, global average pooling and a linear layer.

    Widths ``width, 2 * width, 4 * width``; the second and third blocks have stride 2. The
    first block has stride 2 on images whose shorter side is at least 16 pixels and stride 1 on
    smaller ones (so 8 x 8 digits keep their resolution and 28 x 28 or 32 x 32 images stay
    cheap: a batch of 256 MNIST digits takes tens of milliseconds on a laptop CPU). Adaptive
    average pooling makes any ``H, W >= 8`` work.

    Args:
        in_channels: Channels of the input images (1 for grayscale, 3 for RGB).
        out_features: Width of the output embedding.
        width: Channels of the first block.

    Example:
        >>> import torch
        >>> model = SmallCNN(1, 32, width=8)
        >>> model(torch.rand(4, 1, 28, 28)).shape
        torch.Size([4, 32])
        >>> model(torch.rand(4, 1, 8, 8)).shape
        torch.Size([4, 32])
    """

    def __init__(self, in_channels: int = 1, out_features: int = 128, *, width: int = 32) -> None:
        super().__init__()
        self.in_channels = positive_int("in_channels", in_channels)
        self.out_features = positive_int("out_features", out_features)
        w = positive_int("width", width)
        # The first block's stride depends on the image size, so its conv is applied with
        # F.conv2d in forward; its weights are those of an ordinary Conv2d.
        self.stem = nn.Conv2d(in_channels, w, 3, padding=1, bias=False)
        self.stem_norm = nn.BatchNorm2d(w)
        self.blocks = nn.Sequential(self._block(w, 2 * w), self._block(2 * w, 4 * w))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4 * w, out_features)

    @staticmethod
    def _block(i: int, o: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(i, o, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(o),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        """Embed a batch of images.

        Args:
            x: Shape ``(N, in_channels, H, W)`` with ``H, W >= 8``, floating point.

        Returns:
            Shape ``(N, out_features)``.

        Raises:
            ValueError: If ``x`` has the wrong rank, channel count, dtype or a side below 8.
        """
        if not isinstance(x, Tensor) or x.dim() != 4:
            got = f"shape {tuple(x.shape)}" if isinstance(x, Tensor) else type(x).__name__
            three_d = isinstance(x, Tensor) and x.dim() == 3
            hint = " Add a channel dimension with x[:, None]." if three_d else ""
            raise ValueError(
                f"SmallCNN expects images of shape (N, {self.in_channels}, H, W); got {got}.{hint}"
            )
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"SmallCNN expects in_channels={self.in_channels}; got input of shape "
                f"{tuple(x.shape)} ({x.shape[1]} channels). Build it with "
                f"SmallCNN(in_channels={x.shape[1]}, ...)."
            )
        if min(x.shape[2], x.shape[3]) < 8:
            raise ValueError(
                f"SmallCNN needs images of at least 8 x 8 pixels; got {x.shape[2]} x {x.shape[3]}."
                " Upsample them (torch.nn.functional.interpolate) or use MLP."
            )
        if not x.is_floating_point():
            raise ValueError(
                f"SmallCNN input must be floating point; got dtype {x.dtype}. Use x.float() / 255."
            )
        stride = 2 if min(x.shape[2], x.shape[3]) >= 16 else 1
        h = F.relu(self.stem_norm(F.conv2d(x, self.stem.weight, stride=stride, padding=1)))
        out: Tensor = self.fc(self.pool(self.blocks(h)).flatten(1))
        return out
