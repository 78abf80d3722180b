"""ImageAugment and VectorAugment: seeded, shape-preserving, and geometrically what they claim.

The geometric tests read the transform back from the output: on a ramp image (channel 0 holds
the pixel column, channel 1 the pixel row) bilinear sampling is exact, so finite differences of
the output give the Jacobian of the sampling map in pixel units, independently of the code.
"""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.data.augment import ImageAugment, VectorAugment

NONE = {
    "crop_scale": (1.0, 1.0),
    "rotate": 0.0,
    "translate": 0.0,
    "scale": (1.0, 1.0),
    "flip": False,
    "noise": 0.0,
    "erase_prob": 0.0,
}


def only(**kwargs: object) -> ImageAugment:
    """An ImageAugment with every magnitude zero except the given ones."""
    return ImageAugment(**{**NONE, **kwargs})  # type: ignore[arg-type]


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def ramp(B: int, H: int, W: int) -> torch.Tensor:
    """Channel 0 = column index, channel 1 = row index, float64."""
    cols = torch.arange(W, dtype=torch.float64).expand(H, W)
    rows = torch.arange(H, dtype=torch.float64)[:, None].expand(H, W)
    return torch.stack([cols, rows])[None].expand(B, 2, H, W).contiguous()


def jacobian_at_centre(out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image: the Jacobian and the input position sampled by the central output pixel.

    The Jacobian is d(input column, input row) / d(output column, output row), in pixel units,
    from central differences.
    """
    H, W = out.shape[-2:]
    i, j = H // 2, W // 2
    d_dx = (out[:, :, i, j + 1] - out[:, :, i, j - 1]) / 2  # (B, 2): d(col_in, row_in)/d col_out
    d_dy = (out[:, :, i + 1, j] - out[:, :, i - 1, j]) / 2
    return torch.stack([d_dx, d_dy], dim=2), out[:, :, i, j]


# --- seeding ------------------------------------------------------------------------------------


def test_same_seed_gives_the_same_output() -> None:
    """Equal generator states give equal outputs; the generator advances."""
    x = torch.rand(16, 3, 12, 10, generator=seeded(9))
    aug = ImageAugment(flip=True, erase_prob=0.5)
    a, b = aug(x, seeded(1)), aug(x, seeded(1))
    assert torch.equal(a, b)
    g = seeded(1)
    aug(x, g)
    assert not torch.equal(aug(x, g), a)


def test_different_seeds_differ() -> None:
    """Two seeds give different augmentations of every image."""
    x = torch.rand(16, 1, 28, 28, generator=seeded(9))
    a, b = ImageAugment()(x, seeded(1)), ImageAugment()(x, seeded(2))
    assert bool(((a - b).abs().flatten(1).amax(1) > 1e-3).all())


def test_two_views_differ_and_replay_two_calls() -> None:
    """two_views draws view a then view b from the same generator."""
    x = torch.rand(8, 1, 8, 8, generator=seeded(9))
    aug = ImageAugment()
    a, b = aug.two_views(x, seeded(5))
    g = seeded(5)
    assert torch.equal(a, aug(x, g))
    assert torch.equal(b, aug(x, g))
    assert bool(((a - b).abs().flatten(1).amax(1) > 1e-3).all())


# --- identity and exact geometry ----------------------------------------------------------------


@pytest.mark.parametrize("shape", [(5, 1, 8, 8), (4, 1, 28, 28), (3, 3, 32, 32), (2, 2, 13, 29)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_zero_magnitudes_give_the_input(shape: tuple[int, ...], dtype: torch.dtype) -> None:
    """Identity settings: grid_sample at the pixel centres returns the input."""
    x = torch.rand(shape, generator=seeded(3), dtype=dtype)
    out = only()(x, seeded(0))
    torch.testing.assert_close(out, x, atol=1e-5, rtol=0)


def test_flip_mirrors_about_half_of_the_images() -> None:
    """flip=True: each image is itself or its mirror, and both occur."""
    x = torch.rand(64, 2, 9, 12, generator=seeded(3))
    out = only(flip=True)(x, seeded(0))
    same = (out - x).abs().flatten(1).amax(1) < 1e-5
    mirrored = (out - x.flip(-1)).abs().flatten(1).amax(1) < 1e-5
    assert bool((same ^ mirrored).all())
    assert 16 <= int(mirrored.sum()) <= 48


def test_crop_never_reads_outside_the_image() -> None:
    """A crop alone maps a constant image to the same constant (no zero padding enters)."""
    x = torch.ones(64, 2, 9, 13)
    out = only(crop_scale=(0.1, 0.5))(x, seeded(0))
    torch.testing.assert_close(out, x, atol=1e-5, rtol=0)


@pytest.mark.parametrize(("H", "W"), [(32, 32), (24, 40)])
def test_crop_area_and_aspect_lie_in_their_ranges(H: int, W: int) -> None:
    """The crop is axis-aligned; its area fraction is in crop_scale, its aspect in [3/4, 4/3]."""
    out = only(crop_scale=(0.3, 0.7))(ramp(128, H, W), seeded(0))
    J, _ = jacobian_at_centre(out)
    width_frac, height_frac = J[:, 0, 0], J[:, 1, 1]  # crop size / image size
    torch.testing.assert_close(J[:, 0, 1], torch.zeros(128, dtype=J.dtype), atol=1e-9, rtol=0)
    torch.testing.assert_close(J[:, 1, 0], torch.zeros(128, dtype=J.dtype), atol=1e-9, rtol=0)
    area = width_frac * height_frac
    assert float(area.min()) >= 0.3 - 1e-9
    assert float(area.max()) <= 0.7 + 1e-9
    assert float(area.max() - area.min()) > 0.2  # the range is used
    aspect = (width_frac * W) / (height_frac * H)  # crop width / height in pixels
    assert float(aspect.min()) >= 0.75 - 1e-9
    assert float(aspect.max()) <= 4 / 3 + 1e-9


@pytest.mark.parametrize(("H", "W"), [(33, 33), (25, 47)])
def test_rotation_is_a_rotation_in_pixel_units(H: int, W: int) -> None:
    """Rotation alone: an orthogonal Jacobian with det 1 and angle within +-rotate.

    Orthogonal in pixel units also on non-square images (no shear); the centre stays put.
    """
    out = only(rotate=30.0)(ramp(64, H, W), seeded(0))
    J, centre = jacobian_at_centre(out)
    eye = torch.eye(2, dtype=J.dtype).expand(64, 2, 2)
    torch.testing.assert_close(J.transpose(1, 2) @ J, eye, atol=1e-9, rtol=0)
    torch.testing.assert_close(torch.linalg.det(J), torch.ones(64, dtype=J.dtype))
    angles = torch.rad2deg(torch.atan2(J[:, 1, 0], J[:, 0, 0]))
    assert float(angles.abs().max()) <= 30.0 + 1e-6
    assert float(angles.max() - angles.min()) > 30.0
    expected = torch.tensor([W // 2, H // 2], dtype=J.dtype)
    # The central output pixel samples within one pixel of the centre (it is the exact centre
    # only for odd sizes).
    assert float((centre - expected).abs().max()) <= 1.0


def test_scale_and_translate() -> None:
    """Scale alone: J = I / s with s in range; translate only: J = I and a bounded shift."""
    x = ramp(64, 31, 31)
    J, _ = jacobian_at_centre(only(scale=(0.8, 1.25))(x, seeded(0)))
    inv_s = J[:, 0, 0]
    torch.testing.assert_close(J[:, 1, 1], inv_s)
    assert float(inv_s.min()) >= 0.8 - 1e-9
    assert float(inv_s.max()) <= 1.25 + 1e-9
    J, centre = jacobian_at_centre(only(translate=0.2)(x, seeded(0)))
    torch.testing.assert_close(J, torch.eye(2, dtype=J.dtype).expand(64, 2, 2))
    shift = centre - 15
    assert float(shift.abs().max()) <= 0.2 * 31 + 1e-6
    assert float(shift.abs().max()) > 0.1 * 31


# --- noise, erasing, value statistics -----------------------------------------------------------


def test_noise_is_zero_mean_with_the_given_std() -> None:
    """Noise alone: output - input ~ N(0, noise^2)."""
    x = torch.rand(64, 1, 28, 28, generator=seeded(3))
    diff = only(noise=0.1)(x, seeded(0)) - x
    assert abs(float(diff.mean())) < 0.003
    assert float(diff.std()) == pytest.approx(0.1, rel=0.03)


def test_default_output_statistics_are_sensible() -> None:
    """Default settings on images in [0, 1]: finite, mean and spread near the input's."""
    x = torch.rand(128, 1, 28, 28, generator=seeded(3))
    out = ImageAugment()(x, seeded(0))
    assert bool(torch.isfinite(out).all())
    assert 0.3 < float(out.mean()) <= float(x.mean()) + 0.01  # padding and erasing add zeros
    assert float(out.min()) > -0.5
    assert float(out.max()) < 1.5


@pytest.mark.parametrize(("H", "W"), [(64, 48), (17, 60)])
def test_erased_rectangle_area_lies_in_erase_scale(H: int, W: int) -> None:
    """With erase_prob=1, each image gets one zero rectangle, in every channel.

    Its area lies in erase_scale up to rounding each side to whole pixels.
    """
    lo, hi = 0.05, 0.3
    out = only(erase_prob=1.0, erase_scale=(lo, hi))(torch.ones(100, 3, H, W), seeded(0))
    zero = out == 0
    assert torch.equal(zero[:, 0], zero[:, 1])
    assert torch.equal(zero[:, 0], zero[:, 2])
    zero = zero[:, 0]
    rows, cols = zero.any(2).sum(1), zero.any(1).sum(1)
    count = zero.flatten(1).sum(1)
    assert torch.equal(count, rows * cols)  # a full rectangle
    tol = (0.5 * (H + W) + 0.25) / (H * W)
    frac = count.double() / (H * W)
    assert float(frac.min()) >= lo - tol
    assert float(frac.max()) <= hi + tol
    assert float(frac.max() - frac.min()) > (hi - lo) / 2


def test_erase_probability() -> None:
    """About erase_prob of the images get a rectangle."""
    out = only(erase_prob=0.3)(torch.ones(400, 1, 16, 16), seeded(0))
    erased = (out == 0).flatten(1).any(1).double().mean()
    assert float(erased) == pytest.approx(0.3, abs=0.08)


# --- types, shapes, devices, errors -------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
def test_shape_and_dtype_are_kept(dtype: torch.dtype) -> None:
    """The output has the input's shape and dtype; low precision matches float32 rounded."""
    x = torch.rand(6, 3, 11, 9, generator=seeded(3)).to(dtype)
    out = ImageAugment(flip=True)(x, seeded(0))
    assert out.shape == x.shape
    assert out.dtype == dtype
    if dtype in (torch.bfloat16, torch.float16):
        ref = ImageAugment(flip=True)(x.float(), seeded(0))
        torch.testing.assert_close(out, ref.to(dtype))


def test_empty_batch_and_gradients() -> None:
    """An empty batch comes back empty; the output is differentiable in the input."""
    empty = torch.zeros(0, 1, 8, 8)
    assert ImageAugment()(empty, seeded(0)).shape == (0, 1, 8, 8)
    x = torch.rand(4, 1, 8, 8, requires_grad=True)
    ImageAugment()(x, seeded(0)).sum().backward()
    assert x.grad is not None
    assert bool(torch.isfinite(x.grad).all())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_input_matches_cpu() -> None:
    """A CPU generator drives CUDA images; the result equals the CPU result."""
    x = torch.rand(8, 1, 28, 28, generator=seeded(3))
    cpu = ImageAugment(flip=True, erase_prob=0.5)(x, seeded(0))
    gpu = ImageAugment(flip=True, erase_prob=0.5)(x.cuda(), seeded(0))
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-5, rtol=0)


def test_bad_inputs_raise() -> None:
    """Wrong rank, integer dtype, or a non-generator give ValueErrors that say so."""
    aug = ImageAugment()
    with pytest.raises(ValueError, match=r"4-D.*x\[None\]"):
        aug(torch.rand(1, 8, 8), seeded(0))
    with pytest.raises(ValueError, match=r"floating-point.*uint8"):
        aug(torch.zeros(2, 1, 8, 8, dtype=torch.uint8), seeded(0))
    with pytest.raises(ValueError, match=r"torch\.Generator"):
        aug(torch.rand(2, 1, 8, 8), 0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"crop_scale": (0.0, 1.0)}, "crop_scale"),
        ({"crop_scale": (0.8, 0.5)}, "crop_scale"),
        ({"crop_scale": (0.5, 1.2)}, "crop_scale"),
        ({"crop_scale": 0.5}, "pair"),
        ({"rotate": -1.0}, "rotate"),
        ({"rotate": math.nan}, "rotate"),
        ({"translate": 1.5}, "translate"),
        ({"scale": (0.0, 1.0)}, "scale"),
        ({"flip": 1}, "flip"),
        ({"noise": -0.1}, "noise"),
        ({"erase_prob": 1.5}, "erase_prob"),
        ({"erase_scale": (0.3, 0.1)}, "erase_scale"),
    ],
)
def test_bad_settings_raise(kwargs: dict[str, object], match: str) -> None:
    """Each out-of-range setting is named in the error."""
    with pytest.raises(ValueError, match=match):
        ImageAugment(**kwargs)  # type: ignore[arg-type]


# --- VectorAugment ------------------------------------------------------------------------------


def test_vector_augment_is_seeded_and_views_differ() -> None:
    """Same seed, same output; two views differ; shape and dtype kept."""
    x = torch.randn(32, 10, generator=seeded(3), dtype=torch.float64)
    aug = VectorAugment()
    a, b = aug.two_views(x, seeded(0))
    g = seeded(0)
    assert torch.equal(a, aug(x, g))
    assert torch.equal(b, aug(x, g))
    assert not torch.equal(a, b)
    assert a.shape == x.shape
    assert a.dtype == torch.float64


def test_vector_dropout_and_noise_statistics() -> None:
    """Dropout zeroes a fraction p and scales the rest by 1/(1-p); noise has std sigma."""
    x = torch.ones(200, 50)
    out = VectorAugment(noise=0.0, dropout=0.25)(x, seeded(0))
    dropped = out == 0
    assert float(dropped.double().mean()) == pytest.approx(0.25, abs=0.02)
    torch.testing.assert_close(out[~dropped], torch.full_like(out[~dropped], 1 / 0.75))
    diff = VectorAugment(noise=0.2, dropout=0.0)(x, seeded(0)) - x
    assert float(diff.std()) == pytest.approx(0.2, rel=0.05)
    assert torch.equal(VectorAugment(noise=0.0, dropout=0.0)(x, seeded(0)), x)


def test_vector_augment_bad_input_raises() -> None:
    """dropout=1, 3-D input and integer input are refused."""
    with pytest.raises(ValueError, match="dropout"):
        VectorAugment(dropout=1.0)
    with pytest.raises(ValueError, match=r"2-D"):
        VectorAugment()(torch.rand(2, 3, 4), seeded(0))
    with pytest.raises(ValueError, match="floating-point"):
        VectorAugment()(torch.ones(2, 3, dtype=torch.long), seeded(0))
