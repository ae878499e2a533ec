"""`sluicegate serve` and `sluicegate check-config`."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Any

import click
import orjson

from sluicegate.cli._common import _default_config, serve_state_path
from sluicegate.cli.lang import chinese, t
from sluicegate.config import ConfigError, load_config
from sluicegate.config.model import Settings


def _fail_config(exc: ConfigError) -> None:
    click.echo(f"error: {exc}", err=True)
    sys.exit(2)


def _routes_table(settings: Settings) -> list[str]:
    from sluicegate.routing.routes import build_routes

    lines = []
    for public, channels in build_routes(settings).items():
        targets = ", ".join(
            f"{c.upstream}/{c.model}"
            + (f" (weight {c.weight}, priority {c.priority})" if len(channels) > 1 else "")
            for c in channels
        )
        lines.append(f"  {public:<28} -> {targets}")
    return lines


@click.command("serve")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="SLUICEGATE_CONFIG",
    default=_default_config,
    show_default="$SLUICEGATE_CONFIG, else ./sluicegate.yaml if present, else none (the built-in mock)",
    help="YAML configuration file.",
)
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port to listen on (default 8080).")
@click.option(
    "--workers", type=click.IntRange(1, 256), default=None, help="Worker processes sharing the port."
)
def serve(config_path: str | None, host: str | None, port: int | None, workers: int | None) -> None:
    """Run the gateway. 启动网关。"""
    if config_path:
        os.environ["SLUICEGATE_CONFIG"] = os.path.abspath(config_path)
    for var, value in (("SLUICEGATE_HOST", host), ("SLUICEGATE_PORT", port), ("SLUICEGATE_WORKERS", workers)):
        if value is not None:
            os.environ[var] = str(value)
    try:
        loaded = load_config(os.environ.get("SLUICEGATE_CONFIG") or None)
    except ConfigError as exc:
        _fail_config(exc)
        return
    s = loaded.settings
    from sluicegate.server.runner import preflight_checks, run

    problems = preflight_checks(s)
    if problems:
        for p in problems:
            click.echo(f"error: {p}", err=True)
        sys.exit(2)
    _banner(s, loaded.missing_env)
    state = _note_url(config_path, s)
    try:
        # Normally never returns: the process becomes Granian's lean launcher, which removes the note.
        run(s, str(state) if state is not None else None)
    finally:
        if state is not None:
            with contextlib.suppress(OSError):
                state.unlink()


def _note_url(config_path: str | None, s: Settings) -> Path | None:
    """Write where this gateway listens beside its config, so `channels status` finds it as started."""
    host = s.server.host
    if host in ("0.0.0.0", "", "::"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    path = serve_state_path(config_path)
    try:
        path.write_bytes(orjson.dumps({"url": f"http://{host}:{s.server.port}", "pid": os.getpid()}))
    except OSError:
        return None
    return path


def _with_store(s: Settings) -> Settings:
    """The settings the workers will serve: the file's plus the store's catalog (file names win).

    Read once here so the banner lists every route; a store that cannot be read leaves the file's.
    """
    import asyncio

    try:
        from sluicegate.catalog.effective import merge
        from sluicegate.config import default_database_url
        from sluicegate.store import Store
        from sluicegate.store.crypto import SecretBox

        async def read() -> Settings:
            store = await Store.open(default_database_url(s))
            try:
                return merge(s, await store.catalog.load(), SecretBox(s.master_key)).settings
            finally:
                await store.close()

        return asyncio.run(read())
    except Exception:
        return s


def _banner(s: Settings, missing_env: tuple[tuple[str, str], ...]) -> None:
    url = f"http://{s.server.host}:{s.server.port}"
    click.echo(
        t(
            f"Sluicegate listening on {url}/v1  ({s.server.workers} worker(s))",
            f"Sluicegate 正在监听 {url}/v1（{s.server.workers} 个工作进程）",
        ),
        err=True,
    )
    click.echo(t("Routes:", "路由："), err=True)
    served = _with_store(s)
    for line in _routes_table(served):
        click.echo(line, err=True)
    if s.server.workers > 1 and not s.redis:
        click.echo(
            t(
                f"note: {s.server.workers} workers without Redis: limits of keys created later are split evenly, "
                f"each worker holding 1/{s.server.workers} of each; the total never exceeds a limit, but a request "
                "may be refused while another worker has room. Set `redis:` for exact shared limits.",
                f"注意：{s.server.workers} 个工作进程但未配置 Redis：之后创建的密钥限额将平均分给各进程"
                f"（每个进程 1/{s.server.workers}），总量不会超限，但可能在其他进程尚有余量时拒绝请求。"
                "配置 `redis:` 可获得精确的共享限额。",
            ),
            err=True,
        )
    for path, var in missing_env:
        click.echo(
            t(
                f"warning: {path} refers to ${{{var}}}, which is not set: requests to that upstream "
                "will be answered 503 until it is.",
                f"警告：{path} 引用的环境变量 ${{{var}}} 未设置，发往该上游的请求将返回 503，直到设置为止。",
            ),
            err=True,
        )
    if not served.upstreams and not served.models and chinese():
        click.echo(
            "\n未配置上游：当前使用内置 mock 模型（无需联网、无需密钥）。\n"
            "试试：curl " + url + "/v1/chat/completions -H 'content-type: application/json' "
            '-d \'{"model":"mock-gpt","messages":[{"role":"user","content":"你好"}]}\'\n'
            "接入真实服务商，编写 sluicegate.yaml：\n"
            '  upstreams:\n    deepseek: {preset: deepseek, api_key: "${DEEPSEEK_API_KEY}"}\n'
            "  models:\n    deepseek-chat: deepseek\n"
            "然后运行：sluicegate serve --config sluicegate.yaml   （见 docs/configuration.md）",
            err=True,
        )
    elif not served.upstreams and not served.models:
        click.echo(
            "\nNo upstream configured: serving the built-in mock models (no network, no key needed).\n"
            "Try:  curl " + url + "/v1/chat/completions -H 'content-type: application/json' "
            '-d \'{"model":"mock-gpt","messages":[{"role":"user","content":"hello"}]}\'\n'
            "To add a real provider, write sluicegate.yaml:\n"
            '  upstreams:\n    openai: {preset: openai, api_key: "${OPENAI_API_KEY}"}\n'
            "  models:\n    gpt-4o-mini: openai\n"
            "and run: sluicegate serve --config sluicegate.yaml   (see docs/configuration.md)",
            err=True,
        )


@click.command("check-config")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the resolved configuration as JSON.")
def check_config(path: str, as_json: bool) -> None:
    """Validate a configuration file and print the resolved routes, secrets masked. 校验配置文件。"""
    try:
        loaded = load_config(path)
    except ConfigError as exc:
        _fail_config(exc)
        return
    s = loaded.settings
    if as_json:
        import orjson

        data: dict[str, Any] = s.dump_masked()
        data["missing_env"] = [{"field": f, "variable": v} for f, v in loaded.missing_env]
        click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
        return
    from sluicegate.config.secrets import mask
    from sluicegate.providers.upstream import build_upstreams

    click.echo(f"{path}: OK")
    click.echo(t("Upstreams:", "上游："))
    for name, up in build_upstreams(s).items():
        if name == "mock" and "mock" not in s.upstreams:
            continue
        cfg = s.upstreams[name]
        keys = [k for k in [cfg.api_key, *cfg.api_keys] if k]
        state = (
            "NOT CONFIGURED (no api_key)" if up.missing_key else ", ".join(mask(k) for k in keys) or "no key"
        )
        click.echo(
            f"  {name:<16} {up.kind:<9} {up.base_url or '(built-in)':<55} "
            + t("auth: ", "认证：")
            + f"{up.auth_style}  "
            + t("key: ", "密钥：")
            + state
        )
    for name, cfg in s.upstreams.items():
        if cfg.preset == "gemini":
            click.echo(
                t(
                    f"note: upstreams.{name}: preset `gemini` is now Google's native Gemini API "
                    "(x-goog-api-key, generateContent); the OpenAI-compatible endpoint it named before is "
                    "preset `gemini-openai` (kept for a base_url ending in /openai). See docs/providers.md.",
                    f"提示：upstreams.{name}：预设 `gemini` 现为 Google 原生 Gemini API（x-goog-api-key，"
                    "generateContent）；原先的 OpenAI 兼容端点改名为预设 `gemini-openai`（base_url 以 /openai "
                    "结尾的配置仍使用它）。见 docs/providers.zh-CN.md。",
                )
            )
    click.echo(t("Routes:", "路由："))
    for line in _routes_table(s):
        click.echo(line)
    click.echo(
        t(f"Keys in file: {len(s.keys)}", f"配置文件中的密钥：{len(s.keys)}")
        + (
            ""
            if s.keys
            else t(
                "  (with no managed key in the store either, the gateway is open, on loopback only)",
                "  （若数据库中也没有托管密钥，网关将在无认证状态下运行，仅限本机回环地址）",
            )
        )
    )
    for field, var in loaded.missing_env:
        click.echo(f"warning: {field}: ${{{var}}} is not set")
