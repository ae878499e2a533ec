"""The `sluicegate` command: one click group, one module per command group.

Each command module exposes a click command or group; it is registered here so that
`sluicegate --help` lists everything, and so that importing one command group never
imports another's dependencies (the planner, for example, needs nothing from the server).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterable

import click

from sluicegate import __version__
from sluicegate.cli.lang import chinese

# (module, attribute) of each command; imported lazily when the command runs.
COMMANDS: dict[str, tuple[str, str]] = {
    # -- commands: one line each, "name": ("sluicegate.cli.module", "attribute") --
    "serve": ("sluicegate.cli.serve", "serve"),
    "check-config": ("sluicegate.cli.serve", "check_config"),
    "plan": ("sluicegate.cli.plan", "plan"),
    "keys": ("sluicegate.cli.keys", "keys"),
    "usage": ("sluicegate.cli.usage", "usage"),
    "logs": ("sluicegate.cli.usage", "logs"),
    "db": ("sluicegate.cli.db", "db"),
    "channels": ("sluicegate.cli.channels", "channels"),
    "upstreams": ("sluicegate.cli.upstreams", "upstreams"),
    "models": ("sluicegate.cli.upstreams", "models"),
    "prices": ("sluicegate.cli.prices", "prices"),
    "audit": ("sluicegate.cli.prices", "audit"),
    "users": ("sluicegate.cli.tenancy", "users"),
    "teams": ("sluicegate.cli.tenancy", "teams"),
    "groups": ("sluicegate.cli.tenancy", "groups"),
    "balance": ("sluicegate.cli.money", "balance"),
    "codes": ("sluicegate.cli.money", "codes"),
}


class LazyGroup(click.Group):
    """A click group that imports a command's module only when it is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module = importlib.import_module(target[0])
        command: click.Command = getattr(module, target[1])
        if isinstance(ctx, ChineseContext):  # main() chose Chinese for this process
            localise(command)
        return command


# -- --help in Chinese under a Chinese locale -------------------------------------------------------------


class ChineseHelpFormatter(click.HelpFormatter):
    """Click's own words (Usage, Options, [default: ...]) in Chinese; help texts are swapped earlier."""

    def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        from sluicegate.cli.help_zh import WORDS_ZH

        super().write_usage(prog, args, prefix if prefix is not None else WORDS_ZH["Usage"] + "：")

    def write_heading(self, heading: str) -> None:
        from sluicegate.cli.help_zh import WORDS_ZH

        super().write_heading(WORDS_ZH.get(heading, heading))

    def write_dl(self, rows: Iterable[tuple[str, str]], col_max: int = 30, col_spacing: int = 2) -> None:
        super().write_dl([(term, _chinese_help(text)) for term, text in rows], col_max, col_spacing)


class ChineseContext(click.Context):
    formatter_class = ChineseHelpFormatter


def _chinese_help(text: str) -> str:
    """A help line as click wrote it ("Print JSON.  [default: x]") with both parts in Chinese."""
    from sluicegate.cli.help_zh import HELP_ZH, WORDS_ZH

    body, sep, extra = text.partition("  [")
    body = HELP_ZH.get(body, body)
    if sep:
        extra = extra.replace("default: ", WORDS_ZH["default"] + "：").replace(
            "required", WORDS_ZH["required"]
        )
    return body + sep + extra


def localise(command: click.Command) -> None:
    """Swap a command's (and its subcommands') help texts for Chinese ones, once; unknown ones stay."""
    from sluicegate.cli.help_zh import HELP_ZH

    if getattr(command, "_sluicegate_localised", False):
        return
    command.context_class = ChineseContext
    if command.help:
        command.help = HELP_ZH.get(inspect.cleandoc(command.help), command.help)
    for param in command.params:
        text = getattr(param, "help", None)
        if text:
            param.help = HELP_ZH.get(text, text)
        shown = getattr(param, "show_default", None)
        if isinstance(shown, str):
            param.show_default = HELP_ZH.get(shown, shown)  # type: ignore[attr-defined]
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            localise(sub)
    command._sluicegate_localised = True  # type: ignore[attr-defined]


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="sluicegate")
def cli() -> None:
    """Sluicegate: one fast, exact gateway in front of every LLM API.

    Sluicegate 是一个 LLM 网关：一个 OpenAI 兼容的入口，统一密钥、限额、故障转移与计量。
    """


def main() -> None:
    """The console script. The locale is read here, at the edge: help texts are swapped for this
    process only (tests that invoke `cli` in-process keep the English objects)."""
    if chinese():
        cli.context_class = ChineseContext
    cli(prog_name="sluicegate")
