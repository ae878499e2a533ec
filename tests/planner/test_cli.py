"""The `sluicegate plan` command as scripts and users call it."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from sluicegate.cli.main import cli
from sluicegate.cli.plan import parse_amount


def run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, ["plan", *args], env=env or {"LANG": "C"})


def test_plan_gpus_lists_every_catalog_gpu_with_export_columns(catalog):
    out = run("gpus")
    assert out.exit_code == 0, out.output
    for g in catalog.gpus:
        assert g.id in out.output
    assert "3A090.a" in out.output


def test_plan_json_has_the_documented_shape():
    out = run("--model", "llama-3-8b", "--precision", "bf16", "--json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert {"name", "params_b", "weights_gb", "kv_bytes_per_token"} <= set(data["model"])
    assert data["model"]["params_b"] == pytest.approx(8.03, abs=0.01)
    assert len(data["options"]) >= 10
    first = data["options"][0]
    assert first["prices"] and first["prices"][0]["per_hour"] > 0


def test_plan_ranked_table_names_the_cards_that_cannot_fit():
    out = run("--model", "deepseek-v3", "--precision", "fp16", "--concurrency", "1")
    assert out.exit_code == 0, out.output
    assert "Cannot fit on 64 cards" in out.output and "t4" in out.output.split("Cannot fit")[1]


def test_plan_with_gpu_and_count_evaluates_that_setup_only():
    out = run("--model", "llama-3-70b", "--precision", "fp8", "--gpu", "h100-80g", "--count", "2", "--json")
    data = json.loads(out.output)
    assert [(o["gpu"], o["count"]) for o in data["options"]] == [("h100-80g", 2)]


def test_plan_accepts_a_config_json_path(tmp_path):
    cfg = {
        "model_type": "llama",
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_attention_heads": 32,
        "num_hidden_layers": 32,
        "num_key_value_heads": 8,
        "vocab_size": 128256,
    }
    (tmp_path / "my-model").mkdir()
    path = tmp_path / "my-model" / "config.json"
    path.write_text(json.dumps(cfg))
    data = json.loads(run("--model", str(path), "--precision", "fp16", "--json").output)
    assert data["model"]["name"] == "my-model" and data["model"]["kv_bytes_per_token"] == 131072


def test_plan_prices_in_cny_with_the_seed_rows():
    data = json.loads(
        run(
            "--model",
            "llama-3-8b",
            "--precision",
            "fp16",
            "--gpu",
            "t4",
            "--count",
            "2",
            "--currency",
            "CNY",
            "--json",
        ).output
    )
    tencent = [p for p in data["options"][0]["prices"] if p["provider"] == "tencent"]
    assert tencent[0]["currency"] == "CNY" and tencent[0]["per_hour"] == pytest.approx(2 * 8.68)


def test_plan_price_file_overrides_a_row(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(
        "- {provider: aws, region: us-east-1, instance: g4dn.xlarge, gpu: t4, gpus: 1,"
        " price_per_hour: 0.1, currency: USD, source: me, date: 2026-11}\n"
    )
    data = json.loads(
        run(
            "--model",
            "llama-3-8b",
            "--precision",
            "int4",
            "--gpu",
            "t4",
            "--count",
            "1",
            "--price-file",
            str(path),
            "--json",
        ).output
    )
    aws = [p for p in data["options"][0]["prices"] if p["provider"] == "aws"]
    assert aws[0]["per_hour"] == pytest.approx(0.1)


def test_plan_bad_price_file_is_a_clear_error(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(
        "- {provider: aws, region: x, instance: y, gpu: t5, gpus: 1, price_per_hour: 1,"
        " currency: USD, source: me, date: 2026-11}\n"
    )
    out = run("--model", "llama-3-8b", "--precision", "int4", "--price-file", str(path))
    assert out.exit_code != 0 and "row 1" in out.output and "t5" in out.output


def test_plan_api_price_by_name_reports_break_even():
    out = run("--model", "llama-3-8b", "--precision", "bf16", "--api-price", "gpt-4o-mini")
    assert out.exit_code == 0, out.output
    assert "API gpt-4o-mini" in out.output and "output tokens/day" in out.output


def test_plan_api_price_as_a_number_in_another_currency_is_converted():
    data = json.loads(
        run(
            "--model",
            "llama-3-8b",
            "--precision",
            "bf16",
            "--api-price",
            "7.1CNY",
            "--cny-per-usd",
            "7.1",
            "--json",
        ).output
    )
    assert data["api"]["per_million_output_tokens"] == pytest.approx(1.0)


def test_plan_tokens_per_day_sizes_replicas():
    data = json.loads(
        run(
            "--model",
            "llama-3-8b",
            "--precision",
            "bf16",
            "--gpu",
            "a100-40g",
            "--count",
            "1",
            "--tokens-per-day",
            "100M",
            "--json",
        ).output
    )
    w = data["options"][0]["workload"]
    assert (
        w["replicas"] >= 1 and w["replicas"] * data["options"][0]["served_output_tokens_per_s"] >= 1e8 / 86400
    )


def test_plan_without_model_is_a_usage_error():
    out = run("--precision", "fp16")
    assert out.exit_code == 2 and "--model" in out.output


def test_plan_unknown_model_lists_the_known_ones():
    out = run("--model", "llama-9", "--precision", "fp16")
    assert out.exit_code == 1 and "llama-3-8b" in out.output


def test_plan_headings_switch_to_chinese_under_a_zh_locale():
    out = run("--model", "llama-3-8b", "--precision", "bf16", env={"LANG": "zh_CN.UTF-8"})
    assert "模型" in out.output and "最大并发" in out.output


@pytest.mark.parametrize(("text", "value"), [("5e7", 5e7), ("50M", 5e7), ("1.5B", 1.5e9), ("2000", 2000)])
def test_token_amounts_accept_suffixes(text, value):
    assert parse_amount(text) == value


@pytest.mark.parametrize(
    ("sub", "expected"),
    [
        ("models", "deepseek-v3"),
        ("clouds", "volcengine"),
        ("apis", "gpt-4o-mini"),
    ],
)
def test_catalog_listing_subcommands(sub, expected):
    out = run(sub)
    assert out.exit_code == 0 and expected in out.output


def test_an_explicit_setup_that_does_not_fit_is_marked_in_the_table():
    out = run("--model", "llama-3-70b", "--precision", "fp16", "--gpu", "a100-80g", "--count", "1")
    assert out.exit_code == 0 and "DOES NOT FIT" in out.output and "weights do not fit" in out.output


def test_count_alone_evaluates_every_gpu_at_that_count_fitting_ones_first():
    data = json.loads(run("--model", "llama-3-8b", "--precision", "fp16", "--count", "1", "--json").output)
    fits = [o["fits"] for o in data["options"]]
    assert {o["count"] for o in data["options"]} == {1}
    assert fits == sorted(fits, reverse=True) and not fits[-1]


def test_plan_clouds_says_which_china_offerings_have_no_sourced_price():
    out = run("clouds")
    assert out.exit_code == 0, out.output
    tail = out.output.split("no price could be sourced")[1]
    for provider in ("alibaba", "volcengine", "tencent", "autodl"):
        assert provider in tail
    assert "h20" in tail and "rtx-4090" in tail


def test_plan_takes_any_card_count_and_names_the_layout_and_nodes():
    out = run(
        "--model",
        "deepseek-v3",
        "--precision",
        "fp8",
        "--engine",
        "sglang",
        "--gpu",
        "h100-80g",
        "--count",
        "16",
        "--json",
    )
    assert out.exit_code == 0, out.output
    (o,) = json.loads(out.output)["options"]
    assert (o["count"], o["engine"], o["layout"]["nodes"]) == (16, "sglang", 2) and o["fits"]


def test_an_explicit_layout_must_multiply_to_the_count():
    out = run(
        "--model",
        "llama-3-70b",
        "--precision",
        "fp8",
        "--gpu",
        "h100-80g",
        "--count",
        "4",
        "--tp",
        "2",
        "--pp",
        "3",
    )
    assert out.exit_code != 0 and "not --count 4" in out.output


def test_plan_sizes_replicas_for_a_request_rate_and_ttft_target():
    out = run(
        "--model", "llama-3.1-8b", "--precision", "bf16", "--gpu", "l40s", "--requests-per-s", "20",
        "--target-ttft-ms", "1500", "--target-tokens-per-s", "25", "--json",
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    (o,) = json.loads(out.output)["options"]
    assert o["meets_targets"] and o["workload"]["replicas_at_load"] >= 2 and o["workload"]["utilization"] < 1


def test_plan_table_shows_ranges_and_layouts_in_chinese_under_zh():
    out = run("--model", "llama-3-8b", "--precision", "bf16", env={"LANG": "zh_CN.UTF-8"})
    assert out.exit_code == 0, out.output
    assert "单流tok/s（低-高）" in out.output and "并行" in out.output and "质量" in out.output
