"""Quickstart: SimCLR on scikit-learn's bundled digits with contrastkit's NT-Xent.

Trains a small MLP for about 20 seconds on CPU and reports the linear-probe accuracy of the
random and the trained encoder, then shows that the tiled engine equals the dense computation.
Run: ``python examples/quickstart.py`` (``--seconds`` to train longer).
"""

from __future__ import annotations

import argparse
import math
import time

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from torch import Tensor, nn

import contrastkit as ck


def augment(x: Tensor, gen: torch.Generator) -> Tensor:
    """Random small affine warp plus pixel noise of a batch of 8x8 images ``(B, 64)``."""
    b = x.shape[0]
    img = x.view(b, 1, 8, 8)
    angle = (torch.rand(b, generator=gen) - 0.5) * 0.5
    scale = 1.0 + (torch.rand(b, generator=gen) - 0.5) * 0.3
    shift = (torch.rand(b, 2, generator=gen) - 0.5) * 0.4
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = scale * torch.cos(angle)
    theta[:, 0, 1] = -scale * torch.sin(angle)
    theta[:, 1, 0] = scale * torch.sin(angle)
    theta[:, 1, 1] = scale * torch.cos(angle)
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(img.shape), align_corners=False)
    out = F.grid_sample(img, grid, align_corners=False, padding_mode="zeros")
    return out.view(b, 64) + 0.1 * torch.randn(b, 64, generator=gen)


def probe(encoder: nn.Module, x: Tensor, y: Tensor, n_train: int) -> float:
    """Linear-probe accuracy (logistic regression on frozen features), held-out split."""
    with torch.no_grad():
        feats = encoder(x).numpy()
    clf = LogisticRegression(max_iter=2000)
    clf.fit(feats[:n_train], y[:n_train].numpy())
    return float(clf.score(feats[n_train:], y[n_train:].numpy()))


def main() -> None:
    """Train, evaluate and print the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="training time budget")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--temperature", type=float, default=0.2)
    args = parser.parse_args()

    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32) / 16.0
    y = torch.tensor(digits.target)
    order = torch.randperm(x.shape[0], generator=gen)
    x, y = x[order], y[order]
    n_train = 1200
    print(f"digits: {x.shape[0]} images 8x8, 10 classes; probe trains on {n_train}")

    encoder = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 128))
    head = nn.Sequential(nn.ReLU(), nn.Linear(128, 64))
    raw = LogisticRegression(max_iter=2000).fit(x[:n_train].numpy(), y[:n_train].numpy())
    print(
        f"linear probe, raw pixels:       {raw.score(x[n_train:].numpy(), y[n_train:].numpy()):.3f}"
    )
    print(f"linear probe, random encoder:   {probe(encoder, x, y, n_train):.3f}")

    loss_fn = ck.losses.NTXentLoss(temperature=args.temperature)
    params = list(encoder.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=2e-3, weight_decay=1e-4)
    train = x[:n_train]
    start, step = time.perf_counter(), 0
    while time.perf_counter() - start < args.seconds:
        batch = train[torch.randint(0, n_train, (args.batch_size,), generator=gen)]
        z1 = head(encoder(augment(batch, gen)))
        z2 = head(encoder(augment(batch, gen)))
        loss = loss_fn(z1, z2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 200 == 0:
            elapsed = time.perf_counter() - start
            print(f"  step {step:5d}  NT-Xent {loss.item():.4f}  ({elapsed:.0f} s)")
        step += 1
    print(f"trained {step} steps in {time.perf_counter() - start:.0f} s")
    print(f"linear probe, trained encoder:  {probe(encoder, x, y, n_train):.3f}")

    # The same loss, dense and tiled, on a batch with extra negatives: equal values and grads.
    q = torch.randn(3000, 128, dtype=torch.float64, requires_grad=True)
    k = torch.randn(5000, 128, dtype=torch.float64, requires_grad=True)
    results = []
    for impl in ("dense", "tiled"):
        value = ck.losses.infonce(q, k, temperature=0.05, impl=impl, chunk_size=512)
        results.append((value.item(), *torch.autograd.grad(value, (q, k))))
    gap = max(
        abs(results[0][0] - results[1][0]),
        *(float((a - b).abs().max()) for a, b in zip(results[0][1:], results[1][1:], strict=True)),
    )
    print(
        f"infonce N=3000 M=5000 float64: dense {results[0][0]:.12f} tiled "
        f"{results[1][0]:.12f}, largest difference incl. gradients {gap:.1e}"
    )
    assert math.isfinite(gap)


if __name__ == "__main__":
    main()
