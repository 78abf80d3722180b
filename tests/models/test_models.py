"""The small encoders: shapes, gradients, clear errors, and stable n-gram hashing."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from contrastkit.models import (
    ENCODERS,
    MLP,
    NGramTower,
    ProjectionHead,
    SmallCNN,
    char_ngrams,
    hash_ngrams,
)


def crc32(data: bytes) -> int:
    """CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), bit by bit."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0xEDB88320 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def assert_all_parameters_get_gradients(model: nn.Module, out: torch.Tensor) -> None:
    (out * torch.randn_like(out)).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert bool(torch.isfinite(p.grad).all()), name
        assert float(p.grad.abs().sum()) > 0, name


# --- MLP ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(6, 64), (6, 1, 8, 8), (6, 4, 4, 4)])
def test_mlp_flattens_its_input(shape: tuple[int, ...], gen: torch.Generator) -> None:
    """Any (N, ...) with 64 values per row gives (N, out_features); gradients reach every layer."""
    model = MLP(64, 16, hidden=(32, 24))
    out = model(torch.rand(shape, generator=gen))
    assert out.shape == (6, 16)
    assert model.out_features == 16
    assert_all_parameters_get_gradients(model, out)


def test_mlp_layers() -> None:
    """hidden=() is one linear layer; batch_norm=False has no BatchNorm."""
    assert [type(m) for m in MLP(10, 3, hidden=()).net] == [nn.Linear]
    plain = MLP(10, 3, hidden=(8,), batch_norm=False)
    assert [type(m) for m in plain.net] == [nn.Linear, nn.ReLU, nn.Linear]
    with_bn = MLP(10, 3, hidden=(8,))
    assert [type(m) for m in with_bn.net] == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]


def test_mlp_wrong_width_names_in_features() -> None:
    """The error says which in_features the model expects and what it got."""
    with pytest.raises(ValueError, match=r"in_features=64.*\(2, 1, 28, 28\).*784"):
        MLP(64)(torch.rand(2, 1, 28, 28))
    with pytest.raises(ValueError, match="floating point"):
        MLP(4)(torch.ones(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="in_features"):
        MLP(0)
    with pytest.raises(ValueError, match=r"hidden\[1\]"):
        MLP(4, hidden=(8, -1))


# --- SmallCNN -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channels", "H", "W"), [(1, 8, 8), (1, 28, 28), (3, 32, 32), (2, 8, 40), (1, 15, 17)]
)
def test_cnn_shapes_and_gradients(channels: int, H: int, W: int, gen: torch.Generator) -> None:
    """Any H, W >= 8 gives (N, out_features); every parameter gets a gradient."""
    model = SmallCNN(channels, 12, width=4)
    out = model(torch.rand(3, channels, H, W, generator=gen))
    assert out.shape == (3, 12)
    assert_all_parameters_get_gradients(model, out)


def test_cnn_eval_mode_is_per_sample(gen: torch.Generator) -> None:
    """In eval mode an image's embedding does not depend on the rest of the batch."""
    model = SmallCNN(1, 8, width=4).eval()
    x = torch.rand(5, 1, 28, 28, generator=gen)
    torch.testing.assert_close(model(x)[2:3], model(x[2:3]))


def test_cnn_errors() -> None:
    """Wrong rank, channel count, size or dtype: a ValueError that says what to do."""
    model = SmallCNN(1, 8, width=4)
    with pytest.raises(ValueError, match=r"x\[:, None\]"):
        model(torch.rand(2, 28, 28))
    with pytest.raises(ValueError, match=r"in_channels=1.*SmallCNN\(in_channels=3"):
        model(torch.rand(2, 3, 28, 28))
    with pytest.raises(ValueError, match="at least 8 x 8"):
        model(torch.rand(2, 1, 7, 28))
    with pytest.raises(ValueError, match="floating point"):
        model(torch.zeros(2, 1, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="width"):
        SmallCNN(width=0)


# --- n-grams and hashing ------------------------------------------------------------------------


def test_independent_crc32_is_right() -> None:
    """The test's own CRC-32 gives the standard check value and zlib's well-known crc32(b'a')."""
    assert crc32(b"123456789") == 0xCBF43926
    assert crc32(b"a") == 0xE8B7BE43


def test_char_ngrams_by_hand() -> None:
    """Boundary markers, sizes in order, marker unigrams left out, code points not bytes."""
    assert char_ngrams("ab", (1, 2, 3)) == ["a", "b", "<a", "ab", "b>", "<ab", "ab>"]
    assert char_ngrams("é", (1, 2)) == ["é", "<é", "é>"]
    assert char_ngrams("", (1, 2, 3)) == ["<>"]
    assert char_ngrams("abc", (4,)) == ["<abc", "abc>"]


def test_hash_ngrams_matches_an_independent_crc32() -> None:
    """Ids are crc32(utf-8 n-gram) mod buckets, hand-enumerated, with offsets per text."""
    texts = ["ab", "é", ""]
    grams = [["a", "b", "<a", "ab", "b>"], ["é", "<é", "é>"], ["<>"]]
    indices, offsets = hash_ngrams(texts, (1, 2), 1000)
    expected = [crc32(g.encode("utf-8")) % 1000 for gs in grams for g in gs]
    assert indices.tolist() == expected
    assert offsets.tolist() == [0, 5, 8]
    assert indices.dtype == offsets.dtype == torch.long
    # Hand-computed: crc32(b"a") = 0xE8B7BE43 = 3904355907, and 3904355907 mod 1000 = 907.
    assert indices[0].item() == 907


@pytest.mark.parametrize("text", ["", "a", "xyz", "héllo wörld", "日本語"])
def test_ngram_counts(text: str) -> None:
    """L unigrams, then L + 3 - k windows of size k >= 2 (marked text has L + 2 characters)."""
    L = len(text)
    sizes = (1, 2, 3, 5)
    expected = L + sum(max(0, L + 3 - k) for k in sizes[1:])
    assert len(char_ngrams(text, sizes)) == expected
    indices, offsets = hash_ngrams([text, text], sizes, 97)
    assert indices.numel() == 2 * expected
    assert offsets.tolist() == [0, expected]
    assert all(0 <= i < 97 for i in indices.tolist())


def test_hash_ngrams_errors() -> None:
    """A lone string, non-strings, bad sizes and bad bucket counts are refused."""
    with pytest.raises(ValueError, match=r"\[text\]"):
        hash_ngrams("abc", (1,), 10)
    with pytest.raises(ValueError, match=r"texts\[1\]"):
        hash_ngrams(["a", 3], (1,), 10)  # type: ignore[list-item]
    with pytest.raises(ValueError, match="`n`"):
        hash_ngrams(["a"], (0,), 10)
    with pytest.raises(ValueError, match="`n`"):
        hash_ngrams(["a"], (), 10)
    with pytest.raises(ValueError, match="buckets"):
        hash_ngrams(["a"], (1,), 0)


# --- NGramTower ---------------------------------------------------------------------------------


def test_ngram_tower_is_a_mean_bag_then_linear() -> None:
    """The output equals fc(mean of the hashed n-grams' embeddings), computed by hand."""
    tower = NGramTower(6, n=(1, 2), buckets=50, dim=4)
    out = tower(["ab", "é"])
    assert out.shape == (2, 6)
    W = tower.bag.weight
    for row, grams in zip(out, [["a", "b", "<a", "ab", "b>"], ["é", "<é", "é>"]], strict=True):
        ids = torch.tensor([crc32(g.encode("utf-8")) % 50 for g in grams])
        torch.testing.assert_close(row, tower.fc(W[ids].mean(0)))


def test_ngram_tower_gradients_and_empty_inputs() -> None:
    """Gradients reach the used embedding rows only; empty list and empty bag work."""
    tower = NGramTower(5, n=(1,), buckets=64, dim=3)
    out = tower(["abc", "b"])
    out.sum().backward()
    assert tower.bag.weight.grad is not None
    used = {crc32(c.encode()) % 64 for c in "abc"}
    touched = set(torch.nonzero(tower.bag.weight.grad.abs().sum(1)).flatten().tolist())
    assert touched == used
    assert tower([]).shape == (0, 5)
    torch.testing.assert_close(tower([""])[0], tower.fc.bias)  # empty bag -> zeros -> bias
    with pytest.raises(ValueError, match="sequence of strings"):
        tower("abc")


# --- ProjectionHead and the registry ------------------------------------------------------------


def test_projection_head(gen: torch.Generator) -> None:
    """Linear-BN-ReLU-Linear, hidden defaults to in_features; errors name in_features."""
    head = ProjectionHead(10, 4)
    assert head.net[0].out_features == 10
    assert ProjectionHead(10, 4, hidden=7).net[0].out_features == 7
    out = head(torch.rand(5, 10, generator=gen))
    assert out.shape == (5, 4)
    assert_all_parameters_get_gradients(head, out)
    with pytest.raises(ValueError, match=r"\(N, 10\).*\(5, 11\)"):
        head(torch.rand(5, 11))
    with pytest.raises(ValueError, match="hidden"):
        ProjectionHead(10, hidden=0)


def test_registry() -> None:
    """ENCODERS maps the configuration ids to the classes."""
    assert dict(ENCODERS) == {"mlp": MLP, "cnn": SmallCNN, "ngram": NGramTower}
