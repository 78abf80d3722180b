"""The catalog table, generated from the registry's metadata (README and docs use it)."""

from __future__ import annotations

import inspect

from contrastkit.losses._base import REGISTRY


def _defaults(cls: type) -> str:
    params = inspect.signature(cls).parameters.values()
    shown = [
        f"{p.name}={p.default!r}"
        for p in params
        if p.default is not inspect.Parameter.empty
        and not (p.name == "normalize" and p.default is True)
        and p.name
        not in (
            "reduction",
            "chunk_size",
            "impl",
            "gather_distributed",
            "process_group",
        )
    ]
    return ", ".join(shown)


def catalog_markdown() -> str:
    """A Markdown table of every registered loss.

    Columns: id, module, defaults (``normalize`` only where it is off), paper, family, what it
    needs besides embeddings, how it runs under ``gather_distributed`` (``split``: each rank
    computes its own rows; ``replicated``: every rank evaluates the gathered batch, exact but
    without a compute split) and the peers it is tested against.

    Example:
        >>> print(catalog_markdown().splitlines()[0])
        | id | module | defaults | paper | family | needs | multi-process | peers |
    """
    lines = [
        "| id | module | defaults | paper | family | needs | multi-process | peers |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for loss_id in sorted(REGISTRY, key=lambda k: (REGISTRY[k].family, k)):
        cls = REGISTRY[loss_id]
        req = cls.requires
        needs = [n for n in ("labels", "teacher", "index", "state") if getattr(req, n)]
        paper = f"{cls.paper.authors} {cls.paper.year}, arXiv:{cls.paper.arxiv}"
        peers = ", ".join(f"`{p}`" for p in cls.peers) or "--"
        lines.append(
            f"| `{loss_id}` | `{cls.__name__}` | `{_defaults(cls)}` | {paper} | {cls.family} | "
            f"{', '.join(needs) or '--'} | {cls.distributed} | {peers} |"
        )
    return "\n".join(lines)
