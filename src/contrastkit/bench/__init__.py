"""Benchmarks for contrastkit.

The modules here are run as programs, not imported by the library:

* :mod:`contrastkit.bench.infonce_scaling` -- time and peak memory of symmetric InfoNCE (CLIP
  loss), NT-Xent, SigLIP and SupCon against plain PyTorch and peer libraries, one fresh process
  per case.
  Run ``python -m contrastkit.bench.infonce_scaling --help``.
* :mod:`contrastkit.bench.distributed_scaling` -- per-rank step time and peak memory of the
  distributed CLIP loss as the world size grows (gloo processes on this machine).
* :mod:`contrastkit.bench.pamc_error` -- PamC's error against the exact loss and its time.

``contrastkit bench [scaling|distributed|pamc] -- ARGS`` runs the same code.
"""
