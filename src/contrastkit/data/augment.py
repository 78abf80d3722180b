r"""Seeded, batched two-view augmentations: small images ``(B, C, H, W)`` and feature vectors.

:class:`ImageAugment` draws every random parameter of a batch at once from a
``torch.Generator`` and applies the geometric part to the whole batch with **one**
``affine_grid`` / ``grid_sample`` call: a random resized crop, a rotation, a scale, a translation
and an optional horizontal flip are composed into one ``2 x 3`` matrix per image. Gaussian noise
and random erasing follow. :class:`VectorAugment` does the same for rows of features (Gaussian
noise and feature dropout).

The same generator state gives the same output on any device: parameters and noise are drawn on
the generator's device (usually the CPU) and then moved to the inputs' device. ``two_views``
draws both views from the one generator, one after the other, so the two views differ while the
pair stays reproducible.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["ImageAugment", "VectorAugment"]

# Aspect-ratio ranges (height / width or width / height; both are symmetric in log space) of the
# crop and of the erased rectangle: torchvision's RandomResizedCrop and RandomErasing defaults.
_CROP_RATIO = (3.0 / 4.0, 4.0 / 3.0)
_ERASE_RATIO = (0.3, 3.3)


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"`{name}` must be a number; got {value!r}.")
    if not math.isfinite(float(value)):
        raise ValueError(f"`{name}` must be finite; got {value!r}.")
    return float(value)


def _check_interval(
    name: str, value: object, low: float, high: float, *, open_low: bool, hint: str
) -> tuple[float, float]:
    """Check a ``(lo, hi)`` pair with ``low (<|<=) lo <= hi <= high``; return it as floats."""
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise ValueError(f"`{name}` must be a pair (lo, hi); got {value!r}. {hint}")
    lo, hi = _number(f"{name}[0]", value[0]), _number(f"{name}[1]", value[1])
    below = lo <= low if open_low else lo < low
    if below or hi > high or lo > hi:
        bound = "<" if open_low else "<="
        raise ValueError(
            f"`{name}` must satisfy {low:g} {bound} lo <= hi <= {high:g}; got {value!r}. {hint}"
        )
    return lo, hi


def _check_range(name: str, value: object, low: float, high: float, hint: str) -> float:
    """Check a scalar with ``low <= value <= high``; return it as a float."""
    v = _number(name, value)
    if not low <= v <= high:
        raise ValueError(f"`{name}` must lie in [{low:g}, {high:g}]; got {value!r}. {hint}")
    return v


def _check_generator(generator: object) -> torch.Generator:
    if not isinstance(generator, torch.Generator):
        raise ValueError(
            "`generator` must be a torch.Generator (e.g. torch.Generator().manual_seed(0)); "
            f"got {type(generator).__name__}."
        )
    return generator


def _check_input(name: str, x: object, ndim: int, shape: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise ValueError(
            f"`{name}` must be a torch.Tensor of shape {shape}; got {type(x).__name__}."
        )
    if x.dim() != ndim:
        hint = "Add a batch dimension with x[None]." if x.dim() == ndim - 1 else ""
        raise ValueError(
            f"`{name}` must be {ndim}-D with shape {shape}; got shape {tuple(x.shape)}. {hint}"
        )
    if not x.is_floating_point():
        raise ValueError(
            f"`{name}` must be a floating-point tensor; got dtype {x.dtype}. Convert it first, "
            "e.g. x.float() / 255 for uint8 images."
        )
    return x


def _uniform(u: Tensor, lo: float, hi: float) -> Tensor:
    return lo + (hi - lo) * u


def _log_uniform_clipped(u: Tensor, lo: float, hi: float, low: Tensor, high: Tensor) -> Tensor:
    """Draw ``r`` log-uniform in ``[lo, hi]`` intersected with ``[low, high]`` (per row).

    When the intersection is empty, ``r`` is the end of ``[low, high]`` nearest to ``[lo, hi]``.
    """
    log_low, log_high = low.log(), high.log()
    a = torch.minimum(torch.clamp(log_low, min=math.log(lo)), log_high)
    b = torch.maximum(torch.clamp(log_high, max=math.log(hi)), a)
    return (a + (b - a) * u).exp()


class ImageAugment:
    r"""Batched, vectorized, seeded augmentations for small images ``(B, C, H, W)``.

    For every image, independently:

    1. **Geometry**, as one affine resampling (bilinear, zero padding,
       ``align_corners=False``): a random resized crop covering a fraction
       :math:`a \sim U(\text{crop\_scale})` of the area with aspect ratio log-uniform in
       :math:`[3/4, 4/3]` (narrowed so the crop fits) at a uniform position inside the image
       (a crop alone never samples the padding), resized back to ``H x W``; then a rotation by
       :math:`\theta \sim U(-\text{rotate}, \text{rotate})` degrees and a zoom by
       :math:`s \sim U(\text{scale})` about the centre, a shift by
       :math:`U(-\text{translate}, \text{translate})` of the width and of the height, and, with
       ``flip=True``, a horizontal flip with probability 1/2. With output pixel
       coordinates :math:`p` normalized to :math:`[-1, 1]`, the input is sampled at

       .. math::

           x = c + D\, R\, (F p - t) / s

       where :math:`D` holds the crop's half-sizes, :math:`c` its centre, :math:`R` the
       rotation (in pixel units, so non-square images are not sheared), :math:`F` the flip and
       :math:`t` the shift.
    2. **Noise**: add :math:`\mathcal{N}(0, \text{noise}^2)` to every value (values are not
       clipped, so inputs need not lie in ``[0, 1]``).
    3. **Erasing**: with probability ``erase_prob``, set a rectangle covering a fraction
       :math:`U(\text{erase\_scale})` of the image (aspect ratio log-uniform in
       :math:`[0.3, 3.3]`, narrowed to fit; sides rounded to whole pixels) to zero in every
       channel.

    Every random number comes from the ``generator`` passed to the call, drawn on the
    generator's device and moved to the images' device, so a generator state fixes the output.
    With all magnitudes zero (``crop_scale=(1, 1)``, ``rotate=0``, ``translate=0``,
    ``scale=(1, 1)``, ``flip=False``, ``noise=0``, ``erase_prob=0``) the output equals the
    input up to float rounding of the sampling grid. The result has the input's shape, dtype and
    device (bfloat16 and float16 images are resampled in float32) and is differentiable with
    respect to the input.

    Args:
        crop_scale: Range ``(lo, hi)`` of the crop's area fraction, ``0 < lo <= hi <= 1``.
        rotate: Largest rotation in degrees, in ``[0, 180]``.
        translate: Largest shift as a fraction of the image size, in ``[0, 1]``.
        scale: Range ``(lo, hi)`` of the zoom factor, ``0 < lo <= hi``; above 1 zooms in.
        flip: Flip horizontally with probability 1/2 (leave off for digits and text).
        noise: Standard deviation of the additive Gaussian noise, ``>= 0``.
        erase_prob: Probability of erasing one rectangle, in ``[0, 1]``.
        erase_scale: Range ``(lo, hi)`` of the erased area fraction, ``0 < lo <= hi <= 1``.

    Example:
        >>> import torch
        >>> images = torch.rand(4, 1, 8, 8)
        >>> augment = ImageAugment(rotate=10.0, noise=0.05)
        >>> a, b = augment.two_views(images, torch.Generator().manual_seed(0))
        >>> a.shape, a.dtype
        (torch.Size([4, 1, 8, 8]), torch.float32)
        >>> torch.equal(a, augment(images, torch.Generator().manual_seed(0)))
        True
        >>> torch.equal(a, b)
        False
    """

    def __init__(
        self,
        *,
        crop_scale: tuple[float, float] = (0.6, 1.0),
        rotate: float = 15.0,
        translate: float = 0.1,
        scale: tuple[float, float] = (0.9, 1.1),
        flip: bool = False,
        noise: float = 0.05,
        erase_prob: float = 0.25,
        erase_scale: tuple[float, float] = (0.05, 0.2),
    ) -> None:
        self.crop_scale = _check_interval(
            "crop_scale", crop_scale, 0.0, 1.0, open_low=True, hint="Use (1, 1) for no cropping."
        )
        self.rotate = _check_range("rotate", rotate, 0.0, 180.0, "Use 0 for no rotation.")
        self.translate = _check_range("translate", translate, 0.0, 1.0, "Use 0 for no shift.")
        self.scale = _check_interval(
            "scale", scale, 0.0, math.inf, open_low=True, hint="Use (1.0, 1.0) for no zoom."
        )
        if not isinstance(flip, bool):
            raise ValueError(f"`flip` must be True or False; got {flip!r}.")
        self.flip = flip
        self.noise = _check_range("noise", noise, 0.0, math.inf, "Use 0 for no noise.")
        self.erase_prob = _check_range("erase_prob", erase_prob, 0.0, 1.0, "Use 0 for no erasing.")
        self.erase_scale = _check_interval(
            "erase_scale", erase_scale, 0.0, 1.0, open_low=True, hint="Typical: (0.02, 0.33)."
        )

    def __repr__(self) -> str:
        return (
            f"ImageAugment(crop_scale={self.crop_scale}, rotate={self.rotate}, "
            f"translate={self.translate}, scale={self.scale}, flip={self.flip}, "
            f"noise={self.noise}, erase_prob={self.erase_prob}, erase_scale={self.erase_scale})"
        )

    def __call__(self, images: Tensor, generator: torch.Generator) -> Tensor:
        """Augment a batch once.

        Args:
            images: Shape ``(B, C, H, W)``, floating point, on any device.
            generator: The source of every random number; it advances by one batch's draws.

        Returns:
            The augmented batch, with the shape, dtype and device of ``images``.

        Raises:
            ValueError: If ``images`` is not a 4-D floating-point tensor or ``generator`` is
                not a ``torch.Generator``.
        """
        x = _check_input("images", images, 4, "(B, C, H, W)")
        gen = _check_generator(generator)
        B, _, H, W = x.shape
        if B == 0 or x.numel() == 0:
            return x.clone()
        # One uniform draw per parameter and image, in float64 on the generator's device.
        u = torch.rand((B, 14), generator=gen, dtype=torch.float64, device=gen.device)
        work = torch.float64 if x.dtype == torch.float64 else torch.float32
        theta = self._theta(u[:, :9], H, W).to(device=x.device, dtype=work)
        grid = F.affine_grid(theta, [B, x.shape[1], H, W], align_corners=False)
        out = F.grid_sample(
            x.to(work), grid, mode="bilinear", padding_mode="zeros", align_corners=False
        )
        if self.noise > 0:
            eps = torch.randn(tuple(x.shape), generator=gen, dtype=work, device=gen.device)
            out = out + self.noise * eps.to(x.device)
        if self.erase_prob > 0:
            mask = self._erase_mask(u[:, 9:], H, W).to(x.device)
            out = out.masked_fill(mask[:, None], 0.0)
        return out.to(x.dtype)

    def two_views(self, images: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Two independent augmentations of the same batch, drawn one after the other.

        Args:
            images: Shape ``(B, C, H, W)``.
            generator: Drawn from for the first view, then for the second.

        Returns:
            ``(view_a, view_b)``, each like ``images``.
        """
        return self(images, generator), self(images, generator)

    def _theta(self, u: Tensor, H: int, W: int) -> Tensor:
        """The ``(B, 2, 3)`` sampling matrices from uniforms ``u`` of shape ``(B, 9)``."""
        # Random resized crop: area fraction a, aspect r = width / height (in pixels), so the
        # crop spans half-sizes dx = sqrt(a r H / W), dy = sqrt(a W / (r H)) in normalized units;
        # r is narrowed to [a W / H, W / (a H)] so that dx, dy <= 1.
        area = _uniform(u[:, 0], *self.crop_scale)
        r = _log_uniform_clipped(u[:, 1], *_CROP_RATIO, area * W / H, W / (area * H))
        dx = (area * r * H / W).sqrt().clamp(max=1.0)
        dy = (area * W / (r * H)).sqrt().clamp(max=1.0)
        # The centre keeps the crop's outermost sampling points (output pixel centres at
        # +-(1 - 1/W)) within the input's pixel centres, so a crop never reads the zero padding.
        cx = (1 - dx) * (1 - 1 / W) * (2 * u[:, 2] - 1)
        cy = (1 - dy) * (1 - 1 / H) * (2 * u[:, 3] - 1)
        # Rotation in pixel units: R_n = diag(1/W, 1/H) R diag(W, H).
        angle = torch.deg2rad(_uniform(u[:, 4], -self.rotate, self.rotate))
        cos, sin = angle.cos(), angle.sin()
        s = _uniform(u[:, 5], *self.scale)
        tx = 2 * self.translate * (2 * u[:, 6] - 1)
        ty = 2 * self.translate * (2 * u[:, 7] - 1)
        fx = torch.ones_like(s)
        if self.flip:
            fx = torch.where(u[:, 8] < 0.5, -fx, fx)
        # A = D R_n F / s and b = c - D R_n t / s.
        r00, r01 = cos, -sin * H / W
        r10, r11 = sin * W / H, cos
        a00, a01 = dx * r00 * fx / s, dx * r01 / s
        a10, a11 = dy * r10 * fx / s, dy * r11 / s
        b0 = cx - dx * (r00 * tx + r01 * ty) / s
        b1 = cy - dy * (r10 * tx + r11 * ty) / s
        return torch.stack([a00, a01, b0, a10, a11, b1], dim=1).view(-1, 2, 3)

    def _erase_mask(self, u: Tensor, H: int, W: int) -> Tensor:
        """The ``(B, H, W)`` mask of erased pixels from uniforms ``u`` of shape ``(B, 5)``."""
        apply = u[:, 0] < self.erase_prob
        target = _uniform(u[:, 1], *self.erase_scale) * (H * W)
        # Aspect r = height / width; narrowed to [target / W^2, H^2 / target] so both sides fit.
        r = _log_uniform_clipped(u[:, 2], *_ERASE_RATIO, target / W**2, H**2 / target)
        eh = (target * r).sqrt().round().clamp(1, H).long()
        ew = (target / r).sqrt().round().clamp(1, W).long()
        top = (u[:, 3] * (H - eh + 1)).floor().long().clamp(max=H - eh)
        left = (u[:, 4] * (W - ew + 1)).floor().long().clamp(max=W - ew)
        rows = torch.arange(H, device=u.device)[None, :, None]
        cols = torch.arange(W, device=u.device)[None, None, :]
        inside_rows = (rows >= top[:, None, None]) & (rows < (top + eh)[:, None, None])
        inside_cols = (cols >= left[:, None, None]) & (cols < (left + ew)[:, None, None])
        return inside_rows & inside_cols & apply[:, None, None]


class VectorAugment:
    r"""Seeded augmentations for feature vectors ``(N, D)``: Gaussian noise and feature dropout.

    Each value becomes :math:`m_{ij} (x_{ij} + \sigma \epsilon_{ij}) / (1 - p)` with
    :math:`\epsilon_{ij} \sim \mathcal{N}(0, 1)` and :math:`m_{ij} \sim \text{Bernoulli}(1 - p)`
    (the scaling of ``torch.nn.functional.dropout``, which keeps the mean). The noise is absolute,
    so standardize the features (zero mean, unit variance per column) first. Random numbers are
    drawn on the generator's device and moved to the input's device.

    Args:
        noise: :math:`\sigma \ge 0`, the standard deviation of the noise.
        dropout: :math:`p \in [0, 1)`, the probability of zeroing a value.

    Example:
        >>> import torch
        >>> x = torch.ones(3, 5)
        >>> augment = VectorAugment(noise=0.0, dropout=0.5)
        >>> y = augment(x, torch.Generator().manual_seed(0))
        >>> sorted(set(y.flatten().tolist())) in ([0.0, 2.0], [0.0], [2.0])
        True
        >>> VectorAugment(noise=0.0, dropout=0.0)(x, torch.Generator()).equal(x)
        True
    """

    def __init__(self, *, noise: float = 0.1, dropout: float = 0.2) -> None:
        self.noise = _check_range("noise", noise, 0.0, math.inf, "Use 0 for no noise.")
        self.dropout = _check_range("dropout", dropout, 0.0, 1.0, "Use 0 for no dropout.")
        if self.dropout == 1.0:
            raise ValueError("`dropout` must be < 1 (1 would zero every feature); got 1.0.")

    def __repr__(self) -> str:
        return f"VectorAugment(noise={self.noise}, dropout={self.dropout})"

    def __call__(self, features: Tensor, generator: torch.Generator) -> Tensor:
        """Augment a batch of feature rows once.

        Args:
            features: Shape ``(N, D)``, floating point, on any device.
            generator: The source of every random number.

        Returns:
            The augmented rows, with the shape, dtype and device of ``features``.

        Raises:
            ValueError: If ``features`` is not a 2-D floating-point tensor or ``generator`` is
                not a ``torch.Generator``.
        """
        x = _check_input("features", features, 2, "(N, D)")
        gen = _check_generator(generator)
        if x.numel() == 0:
            return x.clone()
        work = torch.float64 if x.dtype == torch.float64 else torch.float32
        out = x.to(work)
        if self.noise > 0:
            eps = torch.randn(tuple(x.shape), generator=gen, dtype=work, device=gen.device)
            out = out + self.noise * eps.to(x.device)
        if self.dropout > 0:
            u = torch.rand(tuple(x.shape), generator=gen, dtype=work, device=gen.device)
            keep = (u >= self.dropout).to(x.device)
            out = torch.where(keep, out / (1 - self.dropout), torch.zeros_like(out))
        return out.to(x.dtype)

    def two_views(self, features: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Two independent augmentations of the same rows, drawn one after the other.

        Args:
            features: Shape ``(N, D)``.
            generator: Drawn from for the first view, then for the second.

        Returns:
            ``(view_a, view_b)``, each like ``features``.
        """
        return self(features, generator), self(features, generator)
