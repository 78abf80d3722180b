"""MkDocs hook: ``<!-- help: contrastkit CMD -->`` becomes the command's real ``--help`` text.

The help is formatted at build time from ``contrastkit.cli.build_parser()`` (100 columns), so
the command-line page always shows the options the installed code has. ``<!-- help:
contrastkit -->`` gives the top-level help. An unknown command is a warning (``--strict``
fails).

``<!-- config-example -->`` becomes the commented example configuration of
``contrastkit.train.config``'s module docstring (its ``::`` block), with the current defaults.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import Files
from mkdocs.structure.pages import Page

_LOG = logging.getLogger("mkdocs.hooks.contrastkit_cli_help")
_HELP = re.compile(r"<!--\s*help:\s*contrastkit(?P<command>(?:\s+[\w-]+)?)\s*-->")
_CONFIG = re.compile(r"<!--\s*config-example\s*-->")
WIDTH = 100


def _module(config: MkDocsConfig, name: str) -> Any:
    """``name``, from the installed package or else from ``src/``."""
    try:
        return importlib.import_module(name)
    except ImportError:
        sys.path.insert(0, str(Path(config.config_file_path).parent / "src"))
        return importlib.import_module(name)


def config_example(doc: str) -> str:
    """The indented block after the first line ending in ``::`` of ``doc``, dedented."""
    lines = doc.split("\n")
    start = next(i for i, line in enumerate(lines) if line.rstrip().endswith("::")) + 1
    block: list[str] = []
    for line in lines[start:]:
        if line.strip() and not line.startswith(" "):
            break
        block.append(line)
    return textwrap.dedent("\n".join(block)).strip("\n")


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The subcommand parsers of ``parser``, by name."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _help(parser: argparse.ArgumentParser) -> str:
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(WIDTH)  # argparse reads the width from the terminal size
    try:
        return parser.format_help().rstrip()
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Expand ``<!-- help: contrastkit [CMD] -->`` and ``<!-- config-example -->`` markers."""
    if _CONFIG.search(markdown):
        doc = _module(config, "contrastkit.train.config").__doc__ or ""
        markdown = _CONFIG.sub(lambda m: f"```toml\n{config_example(doc)}\n```", markdown)
    if "help:" not in markdown:
        return markdown
    parser = _module(config, "contrastkit.cli").build_parser()
    commands = subcommands(parser)

    def expand(match: re.Match[str]) -> str:
        name = match.group("command").strip()
        target = parser if not name else commands.get(name)
        if target is None:
            _LOG.warning("%s: `contrastkit %s` is not a command", page.file.src_uri, name)
            return ""
        return f"```text\n$ contrastkit {name + ' ' if name else ''}--help\n{_help(target)}\n```"

    return _HELP.sub(expand, markdown)
