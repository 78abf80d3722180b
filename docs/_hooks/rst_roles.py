r"""Griffe extension: read the reStructuredText bits of contrastkit's docstrings as Markdown.

The docstrings are Google style (parsed by mkdocstrings) but write maths and cross-references
the Sphinx way: ``:math:`x```, ``.. math::`` blocks and ``:func:`name``` / ``:class:`` /
``:mod:`` / ``:meth:`` / ``:data:`` / ``:attr:`` roles. This extension rewrites them, before the
docstrings are parsed, into what the site renders:

- ``:math:`x``` becomes ``\\(x\\)`` and a ``.. math::`` block becomes ``\\[ ... \\]``
  (pymdownx.arithmatex, generic mode, typeset by MathJax);
- a role whose target griffe can resolve (from the object's own scope outwards, as Sphinx does,
  or as an absolute path) becomes an autorefs cross-reference ``[`name`][canonical.path]``,
  so ``mkdocs build --strict`` fails if the target is not rendered on any page;
- a role griffe cannot resolve (a builtin such as ``ValueError``, or a broken name) becomes
  inline code, and is listed at INFO level (``mkdocs build -v``) and in ``UNRESOLVED``;
- a reST simple table (``====  ====`` borders) becomes a Markdown table;
- an ``Example:`` heading becomes ``Examples:``, the section griffe knows, so its ``>>>``
  lines render as highlighted code.

Registered in ``mkdocs.yml`` under the python handler's ``extensions``.
"""

from __future__ import annotations

import builtins
import logging
import re
from typing import Any

import griffe

_LOG = logging.getLogger("mkdocs.hooks.contrastkit_rst_roles")

_MATH_ROLE = re.compile(r":math:`([^`]+)`")
_XREF_ROLE = re.compile(r":(?:py:)?(func|class|meth|mod|data|attr|obj|exc):`(~?)([^`]+)`")
_MATH_BLOCK = re.compile(r"^(?P<indent>[ \t]*)\.\. math::[ \t]*$")
_BUILTINS = frozenset(dir(builtins))

UNRESOLVED: set[tuple[str, str]] = set()
"""``(object path, role target)`` pairs left as plain code in the last build."""


def _math_blocks(text: str) -> str:
    r"""``.. math::`` directives -> ``\\[ ... \\]`` display blocks at the directive's indent."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        m = _MATH_BLOCK.match(lines[i])
        if not m:
            out.append(lines[i])
            i += 1
            continue
        indent = m.group("indent")
        i += 1
        body: list[str] = []
        while i < len(lines):
            line = lines[i]
            stripped = line.strip()
            if stripped and len(line) - len(line.lstrip()) <= len(indent):
                break
            body.append(line)
            i += 1
        while body and not body[-1].strip():
            body.pop()
        while body and not body[0].strip():
            body.pop(0)
        width = min((len(b) - len(b.lstrip()) for b in body if b.strip()), default=0)
        if out and out[-1].strip():
            out.append("")
        out.append(f"{indent}\\[")
        out.extend(f"{indent}{b[width:]}" if b.strip() else "" for b in body)
        out.append(f"{indent}\\]")
        out.append("")
    return "\n".join(out)


_ARGS_HEADER = re.compile(
    r"^(?P<indent>[ \t]*)(?:Args|Arguments|Parameters|Other Parameters):[ \t]*$"
)
_SHARED_ARG = re.compile(
    r"^(?P<indent>[ \t]+)(?P<names>[A-Za-z_]\w*(?:, [A-Za-z_]\w*)+):(?P<rest>[ \t].*|)$"
)


def _split_shared_args(text: str) -> str:
    """``a, b, c: Same for all.`` in an ``Args`` section -> one entry per name.

    Google style (and griffe) documents one parameter per entry; the shared entry is repeated
    for each name, continuation lines included.
    """
    lines = text.split("\n")
    out: list[str] = []
    header: str | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        m_header = _ARGS_HEADER.match(line)
        if m_header:
            header = m_header.group("indent")
            out.append(line)
            i += 1
            continue
        if header is not None and line.strip() and len(line) - len(line.lstrip()) <= len(header):
            header = None
        m = _SHARED_ARG.match(line) if header is not None else None
        if m is None:
            out.append(line)
            i += 1
            continue
        indent = m.group("indent")
        i += 1
        cont: list[str] = []
        while i < len(lines) and (
            not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > len(indent)
        ):
            cont.append(lines[i])
            i += 1
        trailing = 0
        while cont and not cont[-1].strip():
            cont.pop()
            trailing += 1
        for name in m.group("names").split(", "):
            out.append(f"{indent}{name}:{m.group('rest')}")
            out.extend(cont)
        out.extend([""] * trailing)
    return "\n".join(out)


_LITERAL = re.compile(r"^(?P<indent>[ \t]*)(?P<text>\S.*?)(?P<colons>:?::)[ \t]*$")


def _literal_blocks(text: str) -> str:
    """A paragraph ending in ``::`` + an indented block -> the paragraph + a fenced code block."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        m = _LITERAL.match(lines[i])
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        indent = len(m.group("indent")) if m else 0
        if (
            m is None
            or m.group("text").startswith("..")
            or j == i + 1
            or j >= len(lines)
            or len(lines[j]) - len(lines[j].lstrip()) <= indent
        ):
            out.append(lines[i])
            i += 1
            continue
        out.append(m.group("indent") + m.group("text") + ":")
        body: list[str] = []
        k = j
        while k < len(lines) and (
            not lines[k].strip() or len(lines[k]) - len(lines[k].lstrip()) > indent
        ):
            body.append(lines[k])
            k += 1
        trailing = 0
        while body and not body[-1].strip():
            body.pop()
            trailing += 1
        width = min(len(b) - len(b.lstrip()) for b in body if b.strip())
        pad = m.group("indent")
        language = "pycon" if body[0].lstrip().startswith(">>>") else "python"
        out += ["", f"{pad}```{language}"]
        out += [f"{pad}{b[width:]}" if b.strip() else "" for b in body]
        out += [f"{pad}```", *([""] * max(trailing, 1))]
        i = k
    return "\n".join(out)


def _lookup(
    scope: griffe.Object | griffe.Alias, dotted: str
) -> griffe.Object | griffe.Alias | None:
    """Resolve ``dotted`` as a member path below ``scope``, following aliases."""
    obj: griffe.Object | griffe.Alias = scope
    for part in dotted.split("."):
        try:
            members = obj.members
        except griffe.AliasResolutionError:
            return None
        if part not in members:
            return None
        obj = members[part]
    return obj


def _resolve(obj: griffe.Object, target: str) -> str | None:
    """The canonical path of ``target`` seen from ``obj``, or ``None``."""
    name = target.rstrip("()")
    scope: griffe.Object | None = obj
    while scope is not None:
        found = _lookup(scope, name)
        if found is not None:
            return _canonical(found)
        scope = scope.parent
    head, _, rest = name.partition(".")
    collection = obj.modules_collection
    if head in collection.members:
        root = collection.members[head]
        found = root if not rest else _lookup(root, rest)
        if found is not None:
            return _canonical(found)
    return None


def _canonical(found: griffe.Object | griffe.Alias) -> str | None:
    try:
        path = found.canonical_path
    except griffe.AliasResolutionError:
        return None
    return path if path.startswith("contrastkit") else None


_TABLE_BORDER = re.compile(r"^(?P<indent>[ \t]*)=+(?:[ \t]+=+)+[ \t]*$")


def _unfinished(cell: str) -> bool:
    return cell.endswith(",") or cell.count("(") > cell.count(")")


def _table_rows(block: list[str], starts: list[int]) -> list[list[str]]:
    """The rows of a simple table's block, cells cut at the border's column starts."""
    merged: list[list[str]] = []
    for line in block:
        ends = [*starts[1:], max(len(line), starts[-1]) + 1]
        row = [line[x:y].strip() for x, y in zip(starts, ends, strict=True)]
        if merged and (not row[0] or _unfinished(merged[-1][0])):
            merged[-1] = [f"{old} {new}".strip() for old, new in zip(merged[-1], row, strict=True)]
        else:
            merged.append(row)
    return merged


def _md_row(indent: str, row: list[str]) -> str:
    return indent + "| " + " | ".join(c.replace("|", "\\|") for c in row) + " |"


def _simple_tables(text: str) -> str:
    """Turn reST simple tables (``====  ====`` borders) into Markdown tables at their indent.

    Markdown would read the borders as setext headings. A row continues the row above
    (multi-line cells) when its first cell is blank, as in reST, or when the first cell above
    is unfinished (ends with a comma or leaves a parenthesis open), as the docstrings wrap
    long first cells; the first border-delimited block is the header.
    """
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        m = _TABLE_BORDER.match(lines[i])
        borders = [i]
        if m is not None:
            j = i + 1
            while j < len(lines) and len(borders) < 3 and lines[j].strip():
                if lines[j].strip() == lines[i].strip():
                    borders.append(j)
                j += 1
        if m is None or len(borders) != 3:
            out.append(lines[i])
            i += 1
            continue
        starts = [c.start() for c in re.finditer(r"=+", lines[i])]
        indent = m.group("indent")
        if out and out[-1].strip():
            out.append("")
        out += [_md_row(indent, r) for r in _table_rows(lines[i + 1 : borders[1]], starts)]
        out.append(indent + "| " + " | ".join("---" for _ in starts) + " |")
        out += [_md_row(indent, r) for r in _table_rows(lines[borders[1] + 1 : borders[2]], starts)]
        i = borders[2] + 1
        if i < len(lines) and lines[i].strip():
            out.append("")
    return "\n".join(out)


_EXAMPLE_HEADER = re.compile(r"^(?P<indent>[ \t]*)Example:[ \t]*$", re.M)


def _rewrite(obj: griffe.Object, text: str) -> str:
    # Google style's singular "Example:" is not a section for griffe (only "Examples:" is): it
    # would become an admonition whose ``>>>`` lines render as nested block quotes.
    text = _EXAMPLE_HEADER.sub(r"\g<indent>Examples:", text)
    text = _split_shared_args(_literal_blocks(_math_blocks(_simple_tables(text))))
    text = _MATH_ROLE.sub(lambda m: "\\(" + m.group(1) + "\\)", text)

    def xref(m: re.Match[str]) -> str:
        tilde, target = m.group(2), m.group(3)
        shown = target.rsplit(".", 1)[-1] if tilde else target
        path = _resolve(obj, target)
        if path is None:
            if target.rstrip("()") not in _BUILTINS:
                UNRESOLVED.add((obj.path, target))
                _LOG.info("unresolved role target %r in the docstring of %s", target, obj.path)
            return f"`{shown}`"
        return f"[`{shown}`][{path}]"

    return _XREF_ROLE.sub(xref, text)


def _walk(obj: griffe.Object) -> None:
    if obj.docstring is not None:
        obj.docstring.value = _rewrite(obj, obj.docstring.value)
    for member in obj.members.values():
        if not member.is_alias:
            _walk(member)  # type: ignore[arg-type]


class RstRoles(griffe.Extension):
    """Rewrite reStructuredText maths and roles in every docstring of a loaded package."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        """Rewrite the docstrings once the whole package (and its aliases) is loaded."""
        _walk(pkg)
