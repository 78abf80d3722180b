"""The catalog of contrastive losses: functional forms, module forms and the registry.

``REGISTRY`` maps each catalog id (``"infonce"``, ``"supcon"``, ...) to its module class, whose
class attributes say what the loss needs (labels, teacher, index, state), its paper, whether it
is exact under ``gather_distributed`` and which peer libraries it is tested against.
"""

from contrastkit.losses._base import REGISTRY, ContrastiveLoss, Paper, Requires
from contrastkit.losses._catalog import catalog_markdown
from contrastkit.losses.clip import CLIPLoss, clip
from contrastkit.losses.dcl import DCLLoss, DCLWLoss, dcl, dclw, von_mises_fisher_weights
from contrastkit.losses.infonce import InfoNCELoss, infonce
from contrastkit.losses.multi_positive import MultiPositiveLoss, multi_positive
from contrastkit.losses.ntxent import NTXentLoss, ntxent
from contrastkit.losses.supcon import SupConLoss, supcon

__all__ = [
    "REGISTRY",
    "CLIPLoss",
    "ContrastiveLoss",
    "DCLLoss",
    "DCLWLoss",
    "InfoNCELoss",
    "MultiPositiveLoss",
    "NTXentLoss",
    "Paper",
    "Requires",
    "SupConLoss",
    "catalog_markdown",
    "clip",
    "dcl",
    "dclw",
    "infonce",
    "multi_positive",
    "ntxent",
    "supcon",
    "von_mises_fisher_weights",
]
