"""English or Simplified Chinese for what the CLI prints to a person (never for --json output).

The CLI is the program's edge, so it reads the locale here: SLUICEGATE_LANG first (`zh` or `en`), then
the usual LC_ALL, LC_MESSAGES and LANG. Machine-readable output does not change with the language.
"""

from __future__ import annotations

import os
import unicodedata


def chinese() -> bool:
    for var in ("SLUICEGATE_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(var)
        if value:
            return value.lower().startswith("zh")
    return False


def t(en: str, zh: str) -> str:
    """The text in the user's language."""
    return zh if chinese() else en


def display_width(text: str) -> int:
    """Columns a terminal uses: CJK characters are two wide, so tables line up in Chinese too."""
    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)


def pad(text: str, width: int, right: bool = False) -> str:
    fill = " " * max(0, width - display_width(text))
    return fill + text if right else text + fill
