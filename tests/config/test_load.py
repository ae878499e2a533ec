"""The configuration file: the issue's example works as written; bad files name field and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluicegate.config import ConfigError, default_database_url, load_config, load_settings

EXAMPLE = """\
keys:                     # static keys from the file; managed keys come later from the store
  - key: sk-team-a
    name: team-a
upstreams:
  openai:   {preset: openai, api_key: "${OPENAI_API_KEY}"}
  groq:     {preset: groq, api_key: "${GROQ_API_KEY}"}
  local:    {base_url: "http://127.0.0.1:8000/v1", api_key: "none"}
models:
  gpt-4o-mini: openai
  llama-3.3-70b: groq/llama-3.3-70b-versatile    # public name -> upstream/upstream's model name
  qwen2.5-7b: local
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "sluicegate.yaml"
    p.write_text(text)
    return p


def problems_of(path: Path, env: dict[str, str] | None = None) -> list[tuple[str, int | None, str]]:
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ=env or {})
    return [(p.path, p.line, p.message) for p in info.value.problems]


def test_issue_example_loads_with_env_secrets(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, EXAMPLE), environ={"OPENAI_API_KEY": "sk-o", "GROQ_API_KEY": "gsk-g"})
    assert s.upstreams["openai"].api_key == "sk-o"
    assert s.upstreams["groq"].api_key == "gsk-g"
    assert s.models["llama-3.3-70b"][0].upstream == "groq"
    assert s.models["llama-3.3-70b"][0].model == "llama-3.3-70b-versatile"
    assert s.models["gpt-4o-mini"][0].model is None
    assert s.keys[0].name == "team-a"


def test_unset_env_secret_is_reported_not_fatal(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path, EXAMPLE), environ={})
    assert loaded.settings.upstreams["openai"].api_key is None
    assert ("upstreams.openai.api_key", "OPENAI_API_KEY") in loaded.missing_env


def test_env_colon_form_and_default_value(tmp_path: Path) -> None:
    text = 'upstreams:\n  a: {base_url: "${BASE:-http://127.0.0.1:9/v1}", api_key: "env:KEY_A"}\n'
    s = load_settings(write(tmp_path, text), environ={"KEY_A": "secret-a"})
    assert s.upstreams["a"].api_key == "secret-a"
    assert s.upstreams["a"].base_url == "http://127.0.0.1:9/v1"


def test_typo_in_field_names_the_field_and_line(tmp_path: Path) -> None:
    text = "upstreams:\n  up:\n    base_ur: http://x\n"
    assert (
        "upstreams.up.base_ur",
        3,
        "unknown field (check the spelling; see docs/configuration.md)",
    ) in problems_of(write(tmp_path, text))


def test_wrong_type_says_what_was_expected(tmp_path: Path) -> None:
    text = "server:\n  host: 127.0.0.1\n  port: eighty\n"
    [(path, line, message)] = problems_of(write(tmp_path, text))
    assert (path, line) == ("server.port", 3)
    assert "integer" in message


def test_unknown_upstream_in_route_is_an_error(tmp_path: Path) -> None:
    text = "upstreams:\n  up: {base_url: 'http://127.0.0.1:1/v1'}\nmodels:\n  a: up\n  b: nowhere/x\n"
    [(path, line, message)] = problems_of(write(tmp_path, text))
    assert (path, line) == ("models.b", 5)
    assert "unknown upstream 'nowhere'" in message


def test_unknown_preset_lists_known_ones(tmp_path: Path) -> None:
    [(path, line, message)] = problems_of(write(tmp_path, "upstreams:\n  x: {preset: opena1}\n"))
    assert path == "upstreams.x.preset" and line == 2
    assert "openai" in message and "groq" in message


def test_invalid_yaml_gives_its_line(tmp_path: Path) -> None:
    [(path, line, message)] = problems_of(write(tmp_path, "models:\n  a: [unclosed\nb: 1\n"))
    assert line is not None and line >= 2
    assert "not valid YAML" in message


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = "server:\n  port: -1\n  workers: 0\nupstreams:\n  u: {base_url: ftp://x}\n"
    paths = {p for p, _, _ in problems_of(write(tmp_path, text))}
    assert {"server.port", "server.workers", "upstreams.u.base_url"} <= paths


def test_secret_values_are_not_echoed_in_errors(tmp_path: Path) -> None:
    text = "upstreams:\n  u: {base_url: 'http://127.0.0.1:1', api_key: 12345678901234567890}\n"
    msgs = " ".join(m for _, _, m in problems_of(write(tmp_path, text)))
    assert "12345678901234567890" not in msgs


def test_list_route_with_weights_and_priorities(tmp_path: Path) -> None:
    text = (
        "upstreams:\n  a: {base_url: 'http://127.0.0.1:1/v1'}\n  b: {base_url: 'http://127.0.0.1:2/v1'}\n"
        "models:\n  m:\n    - {upstream: a, weight: 3}\n    - {upstream: b, priority: 1, model: other}\n"
    )
    s = load_settings(write(tmp_path, text), environ={})
    assert [(c.upstream, c.weight, c.priority, c.model) for c in s.models["m"]] == [
        ("a", 3, 0, None),
        ("b", 1, 1, "other"),
    ]


def test_environment_overrides_deployment_knobs(tmp_path: Path) -> None:
    s = load_settings(
        write(tmp_path, "server: {port: 9000}\n"),
        environ={"SLUICEGATE_PORT": "9100", "SLUICEGATE_REDIS": "redis://127.0.0.1:6379/1"},
    )
    assert s.server.port == 9100
    assert s.redis == "redis://127.0.0.1:6379/1"


def test_default_database_is_sqlite_next_to_the_config(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, "{}\n"), environ={})
    assert default_database_url(s) == f"sqlite:///{tmp_path.resolve() / 'sluicegate.db'}"


def test_no_file_gives_working_defaults() -> None:
    s = load_settings(None, environ={})
    assert s.server.host == "127.0.0.1" and s.upstreams == {} and s.keys == []


def test_masked_dump_hides_every_secret(tmp_path: Path) -> None:
    text = (
        "admin_key: adm-0123456789abcdef\ndatabase: postgresql://u:pw-secret@127.0.0.1/db\n"
        "keys:\n  - {key: sk-client-secret-1, name: a}\n"
        "upstreams:\n  u: {base_url: 'http://127.0.0.1:1', api_key: sk-provider-secret, "
        "headers: {x-extra: hdr-secret-value}}\n"
    )
    dumped = str(load_settings(write(tmp_path, text), environ={}).dump_masked())
    for secret in (
        "adm-0123456789abcdef",
        "pw-secret",
        "sk-client-secret-1",
        "sk-provider-secret",
        "hdr-secret-value",
    ):
        assert secret not in dumped


def test_a_required_field_left_empty_by_an_unset_variable_names_the_variable(tmp_path: Path) -> None:
    [(path, line, message)] = problems_of(write(tmp_path, "keys:\n  - {key: '${CLIENT_KEY}', name: a}\n"))
    assert (path, line) == ("keys.0.key", 2)
    assert "${CLIENT_KEY} is not set" in message
