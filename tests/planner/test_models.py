"""Parameter counts and KV-cache sizes, from architecture, against published figures."""

from __future__ import annotations

import json

import pytest

from sluicegate.planner.models import (
    Architecture,
    ModelConfigError,
    architecture_from_hf_config,
    count_params,
    kv_bytes_per_token,
    kv_shards,
    load_hf_config,
)

KIB = 1024


def test_llama_3_8b_parameter_count_matches_the_official_count(arch):
    assert count_params(arch("llama-3-8b")).total == 8_030_261_248


def test_llama_3_70b_parameter_count_matches_the_official_count(arch):
    assert count_params(arch("llama-3-70b")).total == 70_553_706_496


def test_llama_2_7b_parameter_count_matches_the_official_count(arch):
    assert count_params(arch("llama-2-7b")).total == 6_738_415_616


def test_every_published_count_in_the_catalog_is_reproduced_within_one_percent(catalog, arch):
    checked = 0
    for m in catalog.models:
        if m.params_published is None:
            continue
        counted = count_params(arch(m.name)).total
        assert counted == pytest.approx(m.params_published.value, rel=0.01), m.name
        checked += 1
    assert checked >= 6


def test_mixtral_active_parameters_are_two_of_eight_experts(arch):
    p = count_params(arch("mixtral-8x7b"))
    assert p.total / 1e9 == pytest.approx(46.70, abs=0.01)
    assert p.active / 1e9 == pytest.approx(12.88, abs=0.01)  # Mistral: 12.9B active


def test_deepseek_v3_counts_671b_total_and_37b_active(arch):
    p = count_params(arch("deepseek-v3"))
    assert p.total / 1e9 == pytest.approx(671, rel=0.005)
    assert p.active / 1e9 == pytest.approx(37, rel=0.03)


@pytest.mark.parametrize(
    ("model", "kib"),
    [
        ("llama-2-7b", 512),
        ("llama-2-13b", 800),
        ("llama-2-70b", 320),
        ("llama-3-8b", 128),
        ("llama-3-70b", 320),
        ("qwen2.5-7b", 56),
        ("mixtral-8x7b", 128),
        ("glm-4-9b", 40),
    ],
)
def test_kv_bytes_per_token_at_fp16_follow_from_kv_heads(arch, model, kib):
    assert kv_bytes_per_token(arch(model)) == kib * KIB


def test_grouped_query_attention_makes_llama_2_70b_kv_smaller_than_llama_2_13b(arch):
    assert kv_bytes_per_token(arch("llama-2-70b")) < kv_bytes_per_token(arch("llama-2-13b"))


def test_llama_2_70b_kv_for_1024_tokens_matches_databricks_table(arch):
    # Databricks, "LLM Inference Performance Engineering", Table 3: 0.312 GiB at seq 1024, batch 1
    assert kv_bytes_per_token(arch("llama-2-70b")) * 1024 / 2**30 == pytest.approx(0.3125)


def test_mla_caches_the_latent_and_rope_key_only(arch):
    assert kv_bytes_per_token(arch("deepseek-v3")) == 61 * (512 + 64) * 2


def test_fp8_kv_cache_halves_the_bytes(arch):
    a = arch("llama-3-8b")
    assert kv_bytes_per_token(a, 1.0) == kv_bytes_per_token(a) / 2


def test_tensor_parallel_splits_kv_only_as_far_as_there_are_kv_heads(arch):
    assert kv_shards(arch("qwen2.5-7b"), 8) == 4
    assert kv_shards(arch("llama-3-70b"), 4) == 4


def test_mla_latent_is_replicated_on_every_tensor_parallel_rank(arch):
    assert kv_shards(arch("deepseek-v3"), 8) == 1


LLAMA3_8B_CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 8,
    "vocab_size": 128256,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
}


def test_hf_config_json_file_gives_the_same_architecture_as_the_catalog(tmp_path, arch):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(LLAMA3_8B_CONFIG))
    assert load_hf_config(path) == arch("llama-3-8b")


def test_qwen2_config_implies_qkv_biases(arch):
    cfg = {
        "model_type": "qwen2",
        "hidden_size": 3584,
        "intermediate_size": 18944,
        "num_attention_heads": 28,
        "num_hidden_layers": 28,
        "num_key_value_heads": 4,
        "vocab_size": 152064,
        "tie_word_embeddings": False,
    }
    assert architecture_from_hf_config(cfg) == arch("qwen2.5-7b")


def test_chatglm_config_names_are_understood(arch):
    cfg = {
        "model_type": "chatglm",
        "hidden_size": 4096,
        "ffn_hidden_size": 13696,
        "num_attention_heads": 32,
        "num_layers": 40,
        "multi_query_attention": True,
        "multi_query_group_num": 2,
        "kv_channels": 128,
        "padded_vocab_size": 151552,
        "add_qkv_bias": True,
    }
    assert architecture_from_hf_config(cfg) == arch("glm-4-9b")


def test_deepseek_v3_config_reads_moe_and_mla_fields(arch):
    cfg = {
        "model_type": "deepseek_v3",
        "hidden_size": 7168,
        "intermediate_size": 18432,
        "moe_intermediate_size": 2048,
        "num_attention_heads": 128,
        "num_key_value_heads": 128,
        "num_hidden_layers": 61,
        "vocab_size": 129280,
        "n_routed_experts": 256,
        "n_shared_experts": 1,
        "num_experts_per_tok": 8,
        "first_k_dense_replace": 3,
        "kv_lora_rank": 512,
        "q_lora_rank": 1536,
        "qk_rope_head_dim": 64,
        "qk_nope_head_dim": 128,
        "v_head_dim": 128,
        "tie_word_embeddings": False,
    }
    assert count_params(architecture_from_hf_config(cfg)) == count_params(arch("deepseek-v3"))


def test_mixtral_config_reads_local_experts(arch):
    cfg = {
        **LLAMA3_8B_CONFIG,
        "model_type": "mixtral",
        "vocab_size": 32000,
        "num_local_experts": 8,
        "num_experts_per_tok": 2,
    }
    assert architecture_from_hf_config(cfg) == arch("mixtral-8x7b")


def test_config_without_layer_count_is_refused_with_the_missing_field():
    cfg = {k: v for k, v in LLAMA3_8B_CONFIG.items() if k != "num_hidden_layers"}
    with pytest.raises(ModelConfigError, match="layers"):
        architecture_from_hf_config(cfg)


def test_unknown_architecture_field_in_catalog_data_is_refused():
    with pytest.raises(ModelConfigError):
        Architecture.from_mapping(
            {
                "layers": 1,
                "hidden": 8,
                "heads": 1,
                "kv_heads": 1,
                "head_dim": 8,
                "intermediate": 8,
                "vocab": 8,
                "rotary": True,
            }
        )
