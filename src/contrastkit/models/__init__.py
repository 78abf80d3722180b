"""Small encoders for the bundled data: MLP, small CNN, character n-gram tower, projection head.

- :class:`MLP` (:mod:`~contrastkit.models.mlp`): flat features or flattened small images;
- :class:`SmallCNN` (:mod:`~contrastkit.models.cnn`): images ``(N, C, H, W)`` with
  ``H, W >= 8`` (digits, MNIST, 32 x 32 RGB);
- :class:`NGramTower` (:mod:`~contrastkit.models.ngram`): lists of strings, a mean
  ``EmbeddingBag`` over hashed character n-grams (:func:`hash_ngrams`, stable across processes);
- :class:`ProjectionHead` (:mod:`~contrastkit.models.head`): SimCLR's two-layer head.

Each encoder has an ``out_features`` attribute. :data:`ENCODERS` maps the ids used by the
command line and the training configs to the classes.
"""

from torch import nn

from contrastkit.models.cnn import SmallCNN
from contrastkit.models.head import ProjectionHead
from contrastkit.models.mlp import MLP
from contrastkit.models.ngram import NGramTower, char_ngrams, hash_ngrams

ENCODERS: dict[str, type[nn.Module]] = {"mlp": MLP, "cnn": SmallCNN, "ngram": NGramTower}
"""Encoder id -> class: ``"mlp"``, ``"cnn"``, ``"ngram"``."""

__all__ = [
    "ENCODERS",
    "MLP",
    "NGramTower",
    "ProjectionHead",
    "SmallCNN",
    "char_ngrams",
    "hash_ngrams",
]
