"""`--help` in Chinese under a Chinese locale: every help text has its translation, and the real
command prints it (a subprocess: the locale is read once, by the console script)."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys

import click
import pytest
from support.gateway import child_env

from sluicegate.cli.help_zh import HELP_ZH
from sluicegate.cli.main import COMMANDS


def help_texts(command: click.Command) -> list[str]:
    texts = [inspect.cleandoc(command.help)] if command.help else []
    for param in command.params:
        if getattr(param, "help", None):
            texts.append(param.help)  # type: ignore[attr-defined]
        if isinstance(getattr(param, "show_default", None), str):
            texts.append(param.show_default)  # type: ignore[attr-defined]
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            texts += help_texts(sub)
    return texts


def test_every_help_text_has_a_chinese_translation() -> None:
    missing = [
        text
        for module, attribute in COMMANDS.values()
        for text in help_texts(getattr(importlib.import_module(module), attribute))
        if text not in HELP_ZH
    ]
    assert missing == []


@pytest.mark.parametrize("args", [[], ["keys", "create"], ["upstreams", "add"], ["channels", "test"]])
def test_help_is_chinese_under_a_chinese_locale(args: list[str]) -> None:
    env = child_env({"LANG": "zh_CN.UTF-8", "LC_ALL": "", "LC_MESSAGES": ""})
    done = subprocess.run(
        [sys.executable, "-m", "sluicegate", *args, "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("用法：") and "选项" in done.stdout
    assert "显示此帮助并退出。" in done.stdout and "Show this message" not in done.stdout


def test_help_stays_english_otherwise() -> None:
    env = child_env({"LANG": "en_US.UTF-8", "LC_ALL": "", "LC_MESSAGES": ""})
    done = subprocess.run(
        [sys.executable, "-m", "sluicegate", "keys", "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.stdout.startswith("Usage:") and "Manage API keys" in done.stdout
