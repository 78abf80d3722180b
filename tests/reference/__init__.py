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
from tests.reference.contrastive_margin import contrastive_margin
from tests.reference.cwcl import cwcl
from tests.reference.dcl import dcl, dclw
from tests.reference.focal_supcon import focal_supcon
from tests.reference.gram import gram
from tests.reference.hard_infonce import hard_infonce
from tests.reference.infonce import infonce
from tests.reference.koleo import koleo
from tests.reference.listwise import listwise
from tests.reference.mixco import mixco
from tests.reference.multi_positive import multi_positive
from tests.reference.multimodal_pairwise import multimodal_pairwise
from tests.reference.mw_auc import mw_auc
from tests.reference.ntxent import ntxent
from tests.reference.pair_weighted import pair_weighted
from tests.reference.pairwise_logistic import pairwise_logistic
from tests.reference.palm import palm
from tests.reference.pamc import pamc
from tests.reference.patchnce import asp, patchnce
from tests.reference.prototype_margin import prototype_margin
from tests.reference.proxy_nce import proxy_nce
from tests.reference.siglip import siglip
from tests.reference.soft_bce import soft_bce
from tests.reference.soft_target import soft_target
from tests.reference.sogclr import isogclr, sogclr, sogclr_bimodal
from tests.reference.supcon import supcon
from tests.reference.triplet import triplet
from tests.reference.uniformity import alignment, uniformity

REFERENCES: dict[str, Callable[..., Tensor]] = {
    "palm": palm,
    "pamc": pamc,
    "prototype_margin": prototype_margin,
    "sogclr": sogclr,
    "isogclr": isogclr,
    "sogclr_bimodal": sogclr_bimodal,
    "patchnce": patchnce,
    "asp": asp,
    "proxy_nce": proxy_nce,
    "gram": gram,
    "multimodal_pairwise": multimodal_pairwise,
    "koleo": koleo,
    "uniformity": uniformity,
    "alignment": alignment,
    "infonce": infonce,
    "clip": clip,
    "ntxent": ntxent,
    "supcon": supcon,
    "multi_positive": multi_positive,
    "dcl": dcl,
    "dclw": dclw,
    "contrastive_margin": contrastive_margin,
    "cwcl": cwcl,
    "focal_supcon": focal_supcon,
    "hard_infonce": hard_infonce,
    "listwise": listwise,
    "mixco": mixco,
    "mw_auc": mw_auc,
    "pair_weighted": pair_weighted,
    "pairwise_logistic": pairwise_logistic,
    "siglip": siglip,
    "soft_bce": soft_bce,
    "soft_target": soft_target,
    "triplet": triplet,
}

__all__ = [
    "REFERENCES",
    "alignment",
    "asp",
    "clip",
    "contrastive_margin",
    "cwcl",
    "dcl",
    "dclw",
    "focal_supcon",
    "gram",
    "hard_infonce",
    "infonce",
    "isogclr",
    "koleo",
    "listwise",
    "mixco",
    "multi_positive",
    "multimodal_pairwise",
    "mw_auc",
    "ntxent",
    "pair_weighted",
    "pairwise_logistic",
    "palm",
    "pamc",
    "patchnce",
    "prototype_margin",
    "proxy_nce",
    "siglip",
    "soft_bce",
    "soft_target",
    "sogclr",
    "sogclr_bimodal",
    "supcon",
    "triplet",
    "uniformity",
]
