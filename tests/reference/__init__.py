"""Independent float64 references for the contrastkit loss catalog.

Each reference is the paper's formula written as plain dense float64 PyTorch, imports
nothing from contrastkit, and mirrors the signature of the matching functional form in
``contrastkit.losses`` minus ``chunk_size`` and ``impl``. Inputs are cast to float64
differentiably, so ``torch.autograd.grad`` through a reference gives reference gradients.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from tests.reference.clip import clip
from tests.reference.dcl import dcl, dclw
from tests.reference.infonce import infonce
from tests.reference.multi_positive import multi_positive
from tests.reference.ntxent import ntxent
from tests.reference.supcon import supcon

REFERENCES: dict[str, Callable[..., Tensor]] = {
    "infonce": infonce,
    "clip": clip,
    "ntxent": ntxent,
    "supcon": supcon,
    "multi_positive": multi_positive,
    "dcl": dcl,
    "dclw": dclw,
}

__all__ = [
    "REFERENCES",
    "clip",
    "dcl",
    "dclw",
    "infonce",
    "multi_positive",
    "ntxent",
    "supcon",
]
