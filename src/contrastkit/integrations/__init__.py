"""Adapters to training frameworks; each needs its framework installed (optional dependencies).

Nothing is imported here, so ``import contrastkit`` never pulls an optional dependency in;
import the adapter's module itself:

- :mod:`contrastkit.integrations.sentence_transformers`: ``SentenceTransformerLoss``, any
  contrastkit loss as a sentence-transformers loss (``pip install sentence-transformers``).
- :mod:`contrastkit.integrations.lightning`: training with PyTorch Lightning
  (``pip install lightning``).
"""
