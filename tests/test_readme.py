"""The README's Python examples run as written (the 32768-row CLIP batch shrunk for speed)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_examples_run() -> None:
    """Every ```python block of the README, in order, in one namespace."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "the README should show Python examples"
    code = "\n".join(blocks).replace("32768", "1024")
    exec(compile(code, str(README), "exec"), {})
