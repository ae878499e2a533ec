"""Loading: YAML file, then `${ENV}` substitution, then SLUICEGATE_* overrides, then validation.

A bad file must say which field, on which line, and what was expected, and nothing may start
half-configured: every problem is collected and raised together as one ConfigError.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from sluicegate.config.model import Settings

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

# SLUICEGATE_* variables that override the file (deployment knobs; secrets stay in ${ENV} references).
_ENV_OVERRIDES: dict[str, tuple[str, ...]] = {
    "SLUICEGATE_HOST": ("server", "host"),
    "SLUICEGATE_PORT": ("server", "port"),
    "SLUICEGATE_WORKERS": ("server", "workers"),
    "SLUICEGATE_DATABASE": ("database",),
    "SLUICEGATE_REDIS": ("redis",),
    "SLUICEGATE_ADMIN_KEY": ("admin_key",),
    "SLUICEGATE_MASTER_KEY": ("master_key",),
    "SLUICEGATE_LOG_LEVEL": ("logging", "level"),
    "SLUICEGATE_LOG_JSON": ("logging", "json"),
}


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    path: str  # dotted field path, e.g. "upstreams.openai.base_url"
    line: int | None  # 1-based line in the file, when known
    message: str

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line else ""
        return f"{self.path or '<root>'}{where}: {self.message}"


class ConfigError(Exception):
    """The configuration cannot be used; `problems` lists every reason found."""

    def __init__(self, source: str, problems: list[ConfigProblem]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid configuration in {source}:\n{lines}")


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    settings: Settings
    missing_env: tuple[tuple[str, str], ...]  # (field path, variable) whose variable is unset


def load_settings(
    path: str | os.PathLike[str] | None = None, *, environ: Mapping[str, str] | None = None
) -> Settings:
    """Load and validate; raise ConfigError with every problem found."""
    return load_config(path, environ=environ).settings


def load_config(
    path: str | os.PathLike[str] | None = None, *, environ: Mapping[str, str] | None = None
) -> LoadedConfig:
    env = os.environ if environ is None else environ
    source = str(path) if path else "<defaults>"
    raw: Any = {}
    lines: dict[tuple[str, ...], int] = {}
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                source, [ConfigProblem("", None, f"cannot read file: {exc.strerror}")]
            ) from None
        raw, lines = _parse_yaml(text, source)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(source, [ConfigProblem("", 1, "expected a mapping of sections at the top level")])
    missing: list[tuple[str, str]] = []
    raw = _substitute(raw, env, (), missing)
    _apply_env_overrides(raw, env)
    if path:
        raw["source_path"] = str(Path(path).resolve())
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        problems = _problems(exc, lines)
        unset = dict(missing)
        problems = [
            ConfigProblem(p.path, p.line, f"{p.message}; ${{{unset[p.path]}}} is not set")
            if p.path in unset
            else p
            for p in problems
        ]
        raise ConfigError(source, problems) from None
    problems = _cross_check(settings, lines)
    if problems:
        raise ConfigError(source, problems)
    return LoadedConfig(settings, tuple(missing))


def default_database_url(settings: Settings) -> str:
    """SQLite file next to the config file (or in the working directory without one)."""
    if settings.database:
        return settings.database
    base = Path(settings.source_path).parent if settings.source_path else Path.cwd()
    return f"sqlite:///{(base / 'sluicegate.db').resolve()}"


def default_spill_dir(settings: Settings) -> str:
    """Where the request log spills while the store cannot write: `metering.spill_dir`, else a
    directory beside the SQLite file (`<name>-spill/`), else `sluicegate-spill/` in the working
    directory (the data directory in the images; a config directory is often read-only)."""
    if settings.metering.spill_dir:
        return settings.metering.spill_dir
    from sluicegate.store.engine import sqlite_path

    path = sqlite_path(default_database_url(settings))
    if path is not None:
        return str(path.resolve().parent / f"{path.stem}-spill")
    return str((Path.cwd() / "sluicegate-spill").resolve())


# -- YAML with line numbers ---------------------------------------------------------------------------


def _parse_yaml(text: str, source: str) -> tuple[Any, dict[tuple[str, ...], int]]:
    loader_cls = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        node = yaml.compose(text, Loader=loader_cls)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        what = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(source, [ConfigProblem("", line, f"not valid YAML: {what}")]) from None
    if node is None:
        return {}, {}
    lines: dict[tuple[str, ...], int] = {}
    _index_lines(node, (), lines)
    data = yaml.load(text, Loader=loader_cls)
    return data, lines


def _index_lines(node: yaml.Node, path: tuple[str, ...], out: dict[tuple[str, ...], int]) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = (*path, str(key_node.value))
            out[child] = key_node.start_mark.line + 1
            _index_lines(value_node, child, out)
            out[child] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index_lines(item, (*path, str(i)), out)


def _line_for(path: tuple[str, ...], lines: dict[tuple[str, ...], int]) -> int | None:
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return lines.get(())


# -- ${ENV} substitution ------------------------------------------------------------------------------


def _substitute(
    value: Any, env: Mapping[str, str], path: tuple[str, ...], missing: list[tuple[str, str]]
) -> Any:
    if isinstance(value, dict):
        return {k: _substitute(v, env, (*path, str(k)), missing) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, env, (*path, str(i)), missing) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value
    if value.startswith("env:") and re.fullmatch(r"env:[A-Za-z_][A-Za-z0-9_]*", value):
        name = value[4:]
        if name not in env:
            missing.append((".".join(path), name))
            return None
        return env[name]

    def repl(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        missing.append((".".join(path), name))
        return ""

    out = _ENV_REF.sub(repl, value)
    # A value that was only an unset reference becomes "not given", so a missing provider key reads
    # as "no key" (the upstream reports itself unconfigured) rather than an empty string sent upstream.
    if out == "" and _ENV_REF.fullmatch(value):
        return None
    return out


def _apply_env_overrides(raw: dict[str, Any], env: Mapping[str, str]) -> None:
    for var, path in _ENV_OVERRIDES.items():
        if var not in env or env[var] == "":
            continue
        node = raw
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            node[path[-1]] = env[var]


# -- validation errors -> problems with lines ------------------------------------------------------------

_EXPECTED = {
    "extra_forbidden": "unknown field (check the spelling; see docs/configuration.md)",
    "missing": "required field is missing",
}


def _problems(exc: ValidationError, lines: dict[tuple[str, ...], int]) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    seen: set[tuple[str, str]] = set()
    for err in exc.errors(include_url=False):
        loc = tuple(str(p) for p in err["loc"])
        # Union branches add their type name to loc ('str', 'ChannelConfig', 'list[...]'); drop them.
        clean = tuple(
            p
            for p in loc
            if not (p[:1].isupper() or p in ("str", "int", "float", "bool"))
            and not p.startswith(("list[", "function-", "union["))
        )
        message = _EXPECTED.get(err["type"], err["msg"])
        if "input" in err and err["type"] not in ("missing", "extra_forbidden") and not _secretish(clean):
            message += f" (got {_short(err['input'])})"
        dotted = ".".join(clean)
        if (dotted, message) in seen:
            continue
        seen.add((dotted, message))
        problems.append(ConfigProblem(dotted, _line_for(clean, lines), message))
    return problems


def _secretish(path: tuple[str, ...]) -> bool:
    secret = ("api_key", "api_keys", "key", "admin_key", "master_key", "headers", "client_secret")
    return any(p in secret for p in path)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _cross_check(s: Settings, lines: dict[tuple[str, ...], int]) -> list[ConfigProblem]:
    """Rules that span sections: routes name known upstreams, presets exist, keys are named once."""
    from sluicegate.providers.presets import PRESETS

    problems: list[ConfigProblem] = []
    for name, up in s.upstreams.items():
        path = ("upstreams", name)
        if up.preset is not None and up.preset not in PRESETS:
            problems.append(
                ConfigProblem(
                    f"upstreams.{name}.preset",
                    _line_for((*path, "preset"), lines),
                    f"unknown preset {up.preset!r}; expected one of: {', '.join(sorted(PRESETS))}",
                )
            )
            continue
        preset = PRESETS.get(up.preset or "")
        if up.preset == "vertex" and not (up.project and up.credentials_file):
            problems.append(
                ConfigProblem(
                    f"upstreams.{name}",
                    _line_for(path, lines),
                    "preset vertex needs project and credentials_file (a service-account JSON file)",
                )
            )
        if up.base_url is None and (preset is None or preset.base_url is None):
            problems.append(
                ConfigProblem(
                    f"upstreams.{name}", _line_for(path, lines), "needs base_url (or a preset that has one)"
                )
            )
    for public, channels in s.models.items():
        for i, channel in enumerate(channels):
            upstream = channel.upstream
            if upstream not in s.upstreams and upstream != "mock":
                where = ("models", public, str(i)) if len(channels) > 1 else ("models", public)
                known = ", ".join(sorted(s.upstreams)) or "none configured"
                problems.append(
                    ConfigProblem(
                        ".".join(where),
                        _line_for(where, lines),
                        f"unknown upstream {upstream!r} (upstreams: {known})",
                    )
                )
    names = [k.name for k in s.keys]
    for i, k in enumerate(s.keys):
        if names.count(k.name) > 1:
            problems.append(
                ConfigProblem(
                    f"keys.{i}.name",
                    _line_for(("keys", str(i), "name"), lines),
                    f"key name {k.name!r} is used more than once",
                )
            )
    if s.passthrough.enabled and s.passthrough.upstream and s.passthrough.upstream not in s.upstreams:
        problems.append(
            ConfigProblem(
                "passthrough.upstream",
                _line_for(("passthrough", "upstream"), lines),
                f"unknown upstream {s.passthrough.upstream!r}",
            )
        )
    return problems
