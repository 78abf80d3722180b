"""The README's catalog table is the one generated from the registry."""

from __future__ import annotations

from pathlib import Path

import contrastkit.losses as L

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_catalog_is_generated_from_registry() -> None:
    """Regenerate with ``contrastkit.losses.catalog_markdown()`` when a loss is added."""
    text = README.read_text()
    start = text.index("<!-- catalog:start -->") + len("<!-- catalog:start -->")
    end = text.index("<!-- catalog:end -->")
    assert text[start:end].strip() == L.catalog_markdown()


def test_catalog_lists_every_registered_loss() -> None:
    """Each registry entry has one row, with its module class name."""
    table = L.catalog_markdown()
    for loss_id, cls in L.REGISTRY.items():
        assert f"| `{loss_id}` | `{cls.__name__}` |" in table
