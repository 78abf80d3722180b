"""The docs site builds with --strict and shows every registered loss; CITATION.cff is valid."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from contrastkit.losses import REGISTRY

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
MKDOCS_BUILD = (sys.executable, "-m", "mkdocs", "build", "--strict")
INSTALL_DOCS = 'pip install mkdocs-material "mkdocstrings[python]"'


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site built by ``mkdocs build --strict`` into a temporary directory."""
    for module in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
        pytest.importorskip(module, reason=f"the docs need {INSTALL_DOCS}")
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [*MKDOCS_BUILD, "-f", str(ROOT / "mkdocs.yml"), "-d", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr[-6000:]}"
    return out


def test_catalog_page_lists_every_registered_loss(site: Path) -> None:
    """Every registry id and module class appears in the built catalog page."""
    page = (site / "losses" / "index.html").read_text(encoding="utf-8")
    missing = [i for i in REGISTRY if f"<code>{i}</code>" not in page]
    assert not missing, f"catalog page lacks {missing}"
    missing_cls = [c.__name__ for c in REGISTRY.values() if c.__name__ not in page]
    assert not missing_cls, f"catalog page lacks {missing_cls}"


def test_family_pages_render_every_functional_form(site: Path) -> None:
    """Each loss's functional form is rendered (by mkdocstrings) on its family's page."""
    pages = {p: p.read_text(encoding="utf-8") for p in (site / "losses").glob("*/index.html")}
    families = {cls.family for cls in REGISTRY.values()}
    assert len(pages) == len(families), sorted(str(p) for p in pages)
    for loss_id, cls in REGISTRY.items():
        anchor = f'id="{cls.__module__}.{loss_id}"'
        holders = [p for p, html in pages.items() if anchor in html]
        assert len(holders) == 1, f"{loss_id}: anchor {anchor} on {len(holders)} family pages"
        assert (
            cls.family.partition(". ")[2].split(",")[0].lower()
            in holders[0].read_text(encoding="utf-8").lower()
        ), f"{loss_id} rendered outside its family's page"


def test_docstring_maths_and_roles_are_converted(site: Path) -> None:
    """Docstrings' reST maths becomes MathJax blocks and their roles links, not literal text."""
    html = (site / "losses" / "a-softmax-cross-entropy-one-positive" / "index.html").read_text(
        encoding="utf-8"
    )
    assert '<div class="arithmatex">\\[' in html
    assert '<span class="arithmatex">\\(' in html
    for literal in (":math:", ".. math::", ":func:", ":class:", ":mod:"):
        assert literal not in html, f"{literal!r} left unconverted"


def test_engine_page_shows_the_tiles(site: Path) -> None:
    """The engine page embeds the tile picture, and the picture is in the built site."""
    html = (site / "engine" / "index.html").read_text(encoding="utf-8")
    assert "img/tiles.svg" in html
    svg = (site / "img" / "tiles.svg").read_text(encoding="utf-8")
    assert "<svg" in svg


def test_benchmark_page_shows_the_measured_tables(site: Path) -> None:
    """The README's measured benchmark tables are included verbatim in the benchmark page."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("<!-- bench:start -->")[1].split("<!-- bench:end -->")[0]
    rows = [line for line in section.splitlines() if line.startswith("| 32,768 |")]
    assert rows, "the README's benchmark section should hold an N = 32,768 row"
    html = (site / "benchmarks" / "index.html").read_text(encoding="utf-8")
    for row in rows:
        first_cells = [c.strip() for c in row.strip("|").split("|")][:2]
        assert all(c.replace("`", "") in html for c in first_cells), first_cells
    assert "<!-- include:" not in html


def test_getting_started_repeats_the_readme_commands() -> None:
    """The install and test commands of getting-started.md are the README's, verbatim."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    page = (DOCS / "getting-started.md").read_text(encoding="utf-8")
    readme_bash = re.findall(r"```bash\n(.*?)```", readme, re.S)
    for block in readme_bash[:2]:  # "On a fresh machine": setup, then the tests
        assert block in page, f"getting-started.md lacks the README command:\n{block}"


@pytest.mark.parametrize("page", ["getting-started.md", "metrics.md", "data.md", "models.md"])
def test_page_python_examples_run(page: str) -> None:
    """Every ```python block of the page runs, in order, in one namespace."""
    text = (DOCS / page).read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, f"{page} should show Python examples"
    exec(compile("\n".join(blocks), str(DOCS / page), "exec"), {})


def test_docstring_examples_and_tables_render_as_markdown(site: Path) -> None:
    """``Example:`` doctests become highlighted code and reST simple tables Markdown tables."""
    html = (site / "reference" / "train" / "index.html").read_text(encoding="utf-8")
    assert '<span class="gp">&gt;&gt;&gt; </span>' in html  # a highlighted doctest prompt
    assert "<blockquote>" not in html  # ``>>>`` read as Markdown block quotes
    assert "<th>loss takes</th>" in html  # contrastkit.train.objectives' table
    assert "====" not in html


def test_cli_page_shows_every_command_with_its_help(site: Path) -> None:
    """Every subcommand of ``contrastkit`` has a section and its generated ``--help`` text."""
    from contrastkit.cli import build_parser

    sys.path.insert(0, str(DOCS / "_hooks"))
    try:
        from cli_help import subcommands
    finally:
        sys.path.remove(str(DOCS / "_hooks"))
    commands = subcommands(build_parser())
    assert {"demo", "train", "compare", "bench", "losses"} <= set(commands)
    page = (DOCS / "cli.md").read_text(encoding="utf-8")
    html = (site / "cli" / "index.html").read_text(encoding="utf-8")
    for name in commands:
        assert f"## contrastkit {name}\n" in page, f"cli.md has no section for {name}"
        assert f"usage: contrastkit {name} " in html, f"the help of {name} is not in the page"
    assert "<!-- help:" not in html


def test_data_page_lists_every_data_set_with_its_install_command() -> None:
    """The data page's table names every id of ``contrastkit.data.DATASETS`` and its install."""
    from contrastkit.data import DATASETS

    rows: dict[str, str] = {}  # the first table row of each id: the data sets table
    for line in (DOCS / "data.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("| `"):
            rows.setdefault(line.split("|")[1].strip(" `"), line)
    for name, info in DATASETS.items():
        assert name in rows, f"data.md lacks the data set {name}"
        assert f"`{info.install}`" in rows[name], f"data.md: {name} is installed by {info.install}"


def test_citation_cff_is_valid_cff_1_2() -> None:
    """CITATION.cff parses as YAML and has the keys CFF 1.2.0 requires, with the package version."""
    import contrastkit

    yaml = pytest.importorskip("yaml", reason="reading CITATION.cff needs `pip install pyyaml`")
    data = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert data["cff-version"] == "1.2.0"
    for key in ("message", "title", "authors"):
        assert data.get(key), f"CITATION.cff lacks {key!r}"
    assert all(
        isinstance(a, dict) and (a.get("name") or a.get("family-names")) for a in data["authors"]
    )
    assert str(data["version"]) == contrastkit.__version__
    assert data["license"] == "MIT"
