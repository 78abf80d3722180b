"""Benchmarks for contrastkit.

The modules here are run as programs, not imported by the library:

* :mod:`contrastkit.bench.infonce_scaling` -- time and peak memory of symmetric InfoNCE (CLIP
  loss), NT-Xent, SigLIP and SupCon against plain PyTorch and peer libraries, one fresh process
  per case.
  Run ``python -m contrastkit.bench.infonce_scaling --help``.
"""
