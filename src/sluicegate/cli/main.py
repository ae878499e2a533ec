"""The `sluicegate` command: one click group, one module per command group.

Each command module exposes a click command or group; it is registered here so that
`sluicegate --help` lists everything, and so that importing one command group never
imports another's dependencies (the planner, for example, needs nothing from the server).
"""

from __future__ import annotations

import importlib

import click

from sluicegate import __version__

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
        return getattr(module, target[1])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="sluicegate")
def cli() -> None:
    """Sluicegate: one fast, exact gateway in front of every LLM API.

    Sluicegate 是一个 LLM 网关：一个 OpenAI 兼容的入口，统一密钥、限额、故障转移与计量。
    """


def main() -> None:
    cli(prog_name="sluicegate")
