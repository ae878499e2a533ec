"""The CLI speaks Chinese when the locale (or SLUICEGATE_LANG) says so, and its tables still line up."""

from __future__ import annotations

import pytest

from sluicegate.cli._common import format_table
from sluicegate.cli.lang import chinese, display_width, t


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"LANG": "zh_CN.UTF-8"}, True),
        ({"LANG": "en_US.UTF-8"}, False),
        ({"LANG": "zh_CN.UTF-8", "SLUICEGATE_LANG": "en"}, False),
        ({"LC_ALL": "zh_TW.UTF-8", "LANG": "en_US.UTF-8"}, True),
        ({}, False),
    ],
)
def test_language_follows_the_locale(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: bool
) -> None:
    for var in ("SLUICEGATE_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    assert chinese() is expected
    assert t("keys", "密钥") == ("密钥" if expected else "keys")


def test_cjk_characters_are_two_columns_wide() -> None:
    assert display_width("密钥") == 4 and display_width("key") == 3


def test_table_columns_line_up_with_chinese_cells() -> None:
    lines = format_table(["名称", "限额"], [["测试", "rpm=5"], ["team-a", "-"]]).splitlines()
    starts = [display_width(line[: line.rindex(cell)]) for line, cell in zip(lines, ("限额", "rpm=5", "-"))]
    assert starts == [8, 8, 8], lines
