"""MkDocs hook: the loss pages, generated at build time from ``contrastkit.losses.REGISTRY``.

Nothing here is committed as Markdown, so the pages cannot go stale:

- ``losses/index.md``: the catalog table (``contrastkit.losses.catalog_markdown()``, the same
  table as the README's) with every id and module linked to its documentation, and the list
  of families;
- ``losses/<family>.md``, one page per catalog family (``ContrastiveLoss.family``): a table of
  the family's losses from their metadata, then one ``::: contrastkit.losses.<module>`` block
  per module, which mkdocstrings renders from the docstrings.

The family pages are appended to the "Losses" section of ``nav`` after the catalog. A loss that
is added to the registry appears in the catalog and on its family's page with no docs edit.

The hook also expands ``<!-- include: PATH#NAME -->`` in any page into the part of ``PATH``
(relative to the repository root) between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``, and
``<!-- include: PATH -->`` into the whole file with its headings moved down one level, so the
benchmark page shows the README's and ``benchmarks/RESULTS.md``'s measured tables verbatim.
"""

from __future__ import annotations

import importlib
import logging
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

_LOG = logging.getLogger("mkdocs.hooks.contrastkit_losses")

_GENERATED = "<!-- Generated at build time by docs/_hooks/losses.py from the registry. -->"
_INCLUDE = re.compile(r"<!--\s*include:\s*(?P<path>[^#\s]+)(?:#(?P<name>[\w-]+))?\s*-->")


@dataclass(frozen=True)
class _Loss:
    loss_id: str
    cls: Any  # a ContrastiveLoss subclass
    function: str  # canonical path of the functional form
    module: str  # the module that holds both forms


@dataclass(frozen=True)
class _Family:
    name: str  # e.g. "A. softmax cross-entropy, one positive"
    slug: str  # e.g. "a-softmax-cross-entropy-one-positive"
    losses: tuple[_Loss, ...]

    @property
    def uri(self) -> str:
        return f"losses/{self.slug}.md"

    @property
    def title(self) -> str:
        letter, _, rest = self.name.partition(". ")
        return f"{letter}. {rest[:1].upper()}{rest[1:]}" if rest else self.name


def _import_losses(config: MkDocsConfig) -> Any:
    """``contrastkit.losses``, from the installed package or else from ``src/``."""
    try:
        return importlib.import_module("contrastkit.losses")
    except ImportError:
        src = Path(config.config_file_path).parent / "src"
        sys.path.insert(0, str(src))
        return importlib.import_module("contrastkit.losses")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower().replace(". ", "-")).strip("-")


def _families(losses_pkg: Any) -> list[_Family]:
    registry: dict[str, Any] = losses_pkg.REGISTRY
    by_family: dict[str, list[_Loss]] = {}
    for loss_id in sorted(registry):
        cls = registry[loss_id]
        module = cls.__module__
        if not hasattr(sys.modules[module], loss_id):
            raise RuntimeError(
                f"{cls.__name__} is registered as {loss_id!r} but {module} has no functional "
                f"form named {loss_id!r}; see CONTRIBUTING.md (file = id = functional name)."
            )
        by_family.setdefault(cls.family, []).append(
            _Loss(loss_id, cls, f"{module}.{loss_id}", module)
        )
    return [
        _Family(name, _slug(name), tuple(by_family[name]))
        for name in sorted(by_family)  # the families are lettered: "A. ...", "B. ..."
    ]


def _paper(cls: Any) -> str:
    p = cls.paper
    return f"[{p.authors} {p.year}](https://arxiv.org/abs/{p.arxiv}), *{p.title}*"


def _needs(cls: Any) -> str:
    req = cls.requires
    return ", ".join(n for n in ("labels", "teacher", "index", "state") if getattr(req, n)) or "--"


def _peers(cls: Any) -> str:
    return ", ".join(f"`{p}`" for p in cls.peers) or "--"


def _module_owner(families: Sequence[_Family]) -> dict[str, str]:
    """Module -> the family page that renders it (its first family, if it spans several)."""
    owner: dict[str, str] = {}
    for fam in families:
        for loss in fam.losses:
            owner.setdefault(loss.module, fam.uri)
    return owner


def _family_page(fam: _Family, owner: dict[str, str]) -> str:
    lines = [
        _GENERATED,
        "",
        f"# {fam.title}",
        "",
        f"Family {fam.name.partition('.')[0]} of the [catalog](index.md). Each loss has a "
        "functional form and a module form with the same options; the common options "
        "(`reduction`, `chunk_size`, `impl`, `gather_distributed`, `process_group`) are "
        "described on the [catalog page](index.md#common-options).",
        "",
        "| id | functional | module | needs | multi-process | paper | peers |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for loss in fam.losses:
        cls = loss.cls
        lines.append(
            f"| `{loss.loss_id}` | [`{loss.loss_id}`][{loss.function}] | "
            f"[`{cls.__name__}`][{loss.module}.{cls.__name__}] | {_needs(cls)} | "
            f"{cls.distributed} | {_paper(cls)} | {_peers(cls)} |"
        )
    lines.append("")
    ids = [loss.loss_id for loss in fam.losses]
    first: dict[str, str] = {}
    for loss in fam.losses:  # a module goes where its own id sorts (patchnce.py holds asp)
        short = loss.module.rsplit(".", 1)[-1]
        first.setdefault(loss.module, short if short in ids else loss.loss_id)
    seen = sorted(first, key=first.__getitem__)
    for module in seen:
        if owner[module] != fam.uri:
            lines += [f"`{module}` is documented on [its own page](../{owner[module]}).", ""]
            continue
        lines += [f"::: {module}", ""]
    return "\n".join(lines)


def _catalog_page(losses_pkg: Any, families: Sequence[_Family]) -> str:
    loss_of = {loss.loss_id: loss for fam in families for loss in fam.losses}
    page_of = {fam.name: fam for fam in families}
    table = []
    for row in losses_pkg.catalog_markdown().splitlines():
        cells = row.split(" | ")
        m = re.fullmatch(r"\| `(\w+)`", cells[0])
        if m and m.group(1) in loss_of:
            loss = loss_of[m.group(1)]
            cells[0] = f"| [`{loss.loss_id}`][{loss.function}]"
            cells[1] = f"[`{loss.cls.__name__}`][{loss.module}.{loss.cls.__name__}]"
            fam = page_of[loss.cls.family]
            cells[4] = f"[{fam.name}]({fam.slug}.md)"
        table.append(" | ".join(cells))
    family_list = [
        f"- [{fam.title}]({fam.slug}.md): " + ", ".join(f"`{loss.loss_id}`" for loss in fam.losses)
        for fam in families
    ]
    return "\n".join(
        [
            _GENERATED,
            "",
            "# The catalog",
            "",
            f"{sum(len(f.losses) for f in families)} losses in {len(families)} families, "
            "generated from `contrastkit.losses.REGISTRY` (the same table as the README's, "
            "`contrastkit.losses.catalog_markdown()`). Every loss has a functional form "
            "(`contrastkit.losses.<id>`) and a module form; they normalize their inputs "
            "(cosine similarity) unless the defaults column shows `normalize=False`.",
            "",
            *table,
            "",
            "Columns: *needs* is what the loss takes besides embeddings (`labels`, a `teacher`, "
            "dataset `index`es, `state` kept across steps); *multi-process* is how it runs "
            "under `gather_distributed=True`: `split` (each rank computes the rows it owns) or "
            "`replicated` (every rank evaluates the gathered batch: exact, without dividing "
            "the work); *peers* are the libraries whose implementation it is tested equal to.",
            "",
            "## Families",
            "",
            *family_list,
            "",
            "## Common options",
            "",
            "Every loss, functional or module, takes these keyword arguments:",
            "",
            '- `reduction`: `"mean"` (default), `"sum"` or `"none"` (one term per anchor);',
            "- `chunk_size`: rows and columns per tile; `None` lets the engine choose;",
            '- `impl`: `"auto"` (dense for small matrices, tiled otherwise), `"dense"` or '
            '`"tiled"`; see [the engine](../engine.md);',
            "- `gather_distributed` and `process_group`: the loss of the global batch over all "
            "ranks; see [distributed training](../distributed.md).",
            "",
            "Conventions, the same for every loss: an anchor without a positive or without any "
            "candidate contributes exactly zero (value and gradient) and is left out of the "
            "mean; bf16 / fp16 inputs are upcast once and statistics are kept in float32; bad "
            "input raises a `ValueError` naming the argument, the value and the fix.",
            "",
            "## The registry",
            "",
            "How a loss enters the catalog: [adding a loss](../adding-a-loss.md).",
            "",
            "::: contrastkit.losses",
            "    options:",
            "      heading_level: 3",
            "      members: [REGISTRY, ContrastiveLoss, Paper, Requires, catalog_markdown]",
            "",
        ]
    )


_STATE: dict[str, Any] = {}


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    """Build the pages and append the family pages to the "Losses" section of ``nav``."""
    losses_pkg = _import_losses(config)
    families = _families(losses_pkg)
    owner = _module_owner(families)
    pages = {"losses/index.md": _catalog_page(losses_pkg, families)}
    pages.update({fam.uri: _family_page(fam, owner) for fam in families})
    _STATE["pages"] = pages
    nav = config.nav or []
    for entry in nav:
        if isinstance(entry, dict) and "Losses" in entry:
            section = entry["Losses"]
            listed = {next(iter(e.values())) if isinstance(e, dict) else e for e in section}
            section.extend({fam.title: fam.uri} for fam in families if fam.uri not in listed)
            break
    else:
        raise RuntimeError("mkdocs.yml: nav needs a 'Losses' section for the generated pages")
    return config


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add the generated pages; a committed copy of one would go stale, so it is an error."""
    for uri, content in _STATE["pages"].items():
        existing = files.get_file_from_path(uri)
        if existing is not None and not existing.generated_by:
            _LOG.warning(
                "docs/%s is generated by docs/_hooks/losses.py at build time; delete the "
                "committed copy",
                uri,
            )
            files.remove(existing)
        files.append(File.generated(config, uri, content=content))
    return files


def _include(match: re.Match[str], root: Path, page: Page) -> str:
    path = root / match.group("path")
    if not path.is_file():
        _LOG.warning("%s: include of a missing file %s", page.file.src_uri, path)
        return ""
    text = path.read_text(encoding="utf-8")
    name = match.group("name")
    if name is None:
        return re.sub(r"^(#+) ", r"#\1 ", text, flags=re.MULTILINE)
    part = re.search(
        rf"<!--\s*{re.escape(name)}:start\s*-->\n(.*?)<!--\s*{re.escape(name)}:end\s*-->",
        text,
        flags=re.DOTALL,
    )
    if part is None:
        _LOG.warning("%s: no section %r in %s", page.file.src_uri, name, path)
        return ""
    return part.group(1)


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Expand ``<!-- include: PATH[#NAME] -->`` markers."""
    root = Path(config.config_file_path).parent
    return _INCLUDE.sub(lambda m: _include(m, root, page), markdown)
