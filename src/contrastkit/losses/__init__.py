"""The catalog of contrastive losses: functional forms, module forms and the registry.

``REGISTRY`` maps each catalog id (``"infonce"``, ``"supcon"``, ...) to its module class, whose
class attributes say what the loss needs (labels, teacher, index, state), its paper, whether it
is exact under ``gather_distributed`` and which peer libraries it is tested against.
"""

from contrastkit.losses._base import REGISTRY, ContrastiveLoss, Paper, Requires
from contrastkit.losses._catalog import catalog_markdown
from contrastkit.losses.clip import CLIPLoss, clip
from contrastkit.losses.contrastive_margin import ContrastiveMarginLoss, contrastive_margin
from contrastkit.losses.cwcl import CWCLLoss, cwcl
from contrastkit.losses.dcl import DCLLoss, DCLWLoss, dcl, dclw, von_mises_fisher_weights
from contrastkit.losses.focal_supcon import FocalSupConLoss, focal_supcon
from contrastkit.losses.gram import GRAMLoss, gram
from contrastkit.losses.hard_infonce import HardInfoNCELoss, hard_infonce
from contrastkit.losses.infonce import InfoNCELoss, infonce
from contrastkit.losses.koleo import KoLeoLoss, koleo
from contrastkit.losses.listwise import ListwiseLoss, listwise
from contrastkit.losses.mixco import MixCoLoss, mixco, mixup
from contrastkit.losses.multi_positive import MultiPositiveLoss, multi_positive
from contrastkit.losses.multimodal_pairwise import MultimodalPairwiseLoss, multimodal_pairwise
from contrastkit.losses.mw_auc import MWAUCLoss, mw_auc
from contrastkit.losses.ntxent import NTXentLoss, ntxent
from contrastkit.losses.pair_weighted import PairWeightedLoss, pair_weighted
from contrastkit.losses.pairwise_logistic import PairwiseLogisticLoss, pairwise_logistic
from contrastkit.losses.palm import PALMLoss, palm, palm_update
from contrastkit.losses.pamc import PamCLoss, pamc
from contrastkit.losses.patchnce import (
    ASPLoss,
    PatchNCELoss,
    asp,
    asp_progress,
    asp_weights,
    patchnce,
)
from contrastkit.losses.prototype_margin import (
    PrototypeMarginLoss,
    jaccard_cooccurrence,
    prototype_margin,
)
from contrastkit.losses.proxy_nce import ProxyNCELoss, hpcr_loss_scale, proxy_nce
from contrastkit.losses.siglip import SigLIPLoss, siglip
from contrastkit.losses.soft_bce import SoftBCELoss, soft_bce
from contrastkit.losses.soft_target import SoftTargetLoss, soft_target
from contrastkit.losses.sogclr import (
    ISogCLRLoss,
    SogCLRBimodalLoss,
    SogCLRLoss,
    isogclr,
    sogclr,
    sogclr_bimodal,
)
from contrastkit.losses.supcon import SupConLoss, supcon
from contrastkit.losses.triplet import TripletLoss, triplet
from contrastkit.losses.uniformity import AlignmentLoss, UniformityLoss, alignment, uniformity

__all__ = [
    "REGISTRY",
    "ASPLoss",
    "AlignmentLoss",
    "CLIPLoss",
    "CWCLLoss",
    "ContrastiveLoss",
    "ContrastiveMarginLoss",
    "DCLLoss",
    "DCLWLoss",
    "FocalSupConLoss",
    "GRAMLoss",
    "HardInfoNCELoss",
    "ISogCLRLoss",
    "InfoNCELoss",
    "KoLeoLoss",
    "ListwiseLoss",
    "MWAUCLoss",
    "MixCoLoss",
    "MultiPositiveLoss",
    "MultimodalPairwiseLoss",
    "NTXentLoss",
    "PALMLoss",
    "PairWeightedLoss",
    "PairwiseLogisticLoss",
    "PamCLoss",
    "Paper",
    "PatchNCELoss",
    "PrototypeMarginLoss",
    "ProxyNCELoss",
    "Requires",
    "SigLIPLoss",
    "SoftBCELoss",
    "SoftTargetLoss",
    "SogCLRBimodalLoss",
    "SogCLRLoss",
    "SupConLoss",
    "TripletLoss",
    "UniformityLoss",
    "alignment",
    "asp",
    "asp_progress",
    "asp_weights",
    "catalog_markdown",
    "clip",
    "contrastive_margin",
    "cwcl",
    "dcl",
    "dclw",
    "focal_supcon",
    "gram",
    "hard_infonce",
    "hpcr_loss_scale",
    "infonce",
    "isogclr",
    "jaccard_cooccurrence",
    "koleo",
    "listwise",
    "mixco",
    "mixup",
    "multi_positive",
    "multimodal_pairwise",
    "mw_auc",
    "ntxent",
    "pair_weighted",
    "pairwise_logistic",
    "palm",
    "palm_update",
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
    "von_mises_fisher_weights",
]
