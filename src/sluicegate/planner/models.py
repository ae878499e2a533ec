"""Model architectures: parameter counts, KV-cache size per token, and Hugging Face configs.

Counting from the architecture instead of trusting a name ("7B") matters for two reasons the
common calculators miss: grouped-query attention shrinks the KV cache by heads/kv_heads (8x for
Llama-3-70B), and mixture-of-experts models read only the active experts per token.

Formulas (gated MLP; ``hd`` = head_dim, ``q = heads·hd``, ``kv = kv_heads·hd``)::

    attention  = hidden·q + 2·hidden·kv + q·hidden        (+ q + 2·kv with QKV biases)
    mlp        = 3·hidden·intermediate                     (2· when not gated)
    per_layer  = attention + mlp + 2·hidden                (two norms)
    total      = layers·per_layer + vocab·hidden·(1 if tied else 2) + hidden
    MoE layer  = experts·3·hidden·moe_inter + hidden·experts (router) + shared·3·hidden·moe_inter
    KV bytes/token = 2 · layers · kv_heads · hd · bytes   (MLA: layers · (kv_lora_rank + rope_dim) · bytes)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any


class ModelConfigError(ValueError):
    """A config.json lacks a field the estimator needs, or is not a decoder-only transformer."""


@dataclass(frozen=True)
class Architecture:
    """The shape of a decoder-only transformer, as far as memory and speed depend on it."""

    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    tied: bool = False
    gated: bool = True
    qkv_bias: bool = False
    experts: int = 0
    active_experts: int = 0
    moe_intermediate: int = 0
    shared_experts: int = 0
    dense_layers: int = 0
    kv_lora_rank: int = 0
    qk_rope_head_dim: int = 0
    q_lora_rank: int = 0
    qk_nope_head_dim: int = 0
    v_head_dim: int = 0

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> Architecture:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ModelConfigError(f"unknown architecture fields: {sorted(unknown)}")
        return cls(**data)

    @property
    def is_moe(self) -> bool:
        return self.experts > 0

    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank > 0

    @property
    def q_dim(self) -> int:
        return self.heads * self.head_dim


@dataclass(frozen=True)
class ParamCount:
    """Parameters split the way memory and speed need them."""

    total: int
    active: int
    embedding: int  # input embedding + untied lm_head, kept at 16 bits by quantizers
    expert: int  # routed-expert weights (all of them), 0 for dense models

    @property
    def non_expert(self) -> int:
        return self.total - self.expert


def _attention_params(a: Architecture) -> int:
    if a.is_mla:
        qk_head = a.qk_nope_head_dim + a.qk_rope_head_dim
        q = (
            a.hidden * a.q_lora_rank + a.q_lora_rank + a.q_lora_rank * a.heads * qk_head
            if a.q_lora_rank
            else a.hidden * a.heads * qk_head
        )
        kv = (
            a.hidden * (a.kv_lora_rank + a.qk_rope_head_dim)
            + a.kv_lora_rank
            + a.kv_lora_rank * a.heads * (a.qk_nope_head_dim + a.v_head_dim)
        )
        return q + kv + a.heads * a.v_head_dim * a.hidden
    q, kv = a.q_dim, a.kv_heads * a.head_dim
    params = a.hidden * q + 2 * a.hidden * kv + q * a.hidden
    return params + (q + 2 * kv if a.qkv_bias else 0)


def count_params(a: Architecture) -> ParamCount:
    """Total, active (per token), embedding and routed-expert parameter counts."""
    mats = 3 if a.gated else 2
    attention = _attention_params(a)
    norms = 2 * a.hidden
    dense_mlp = mats * a.hidden * a.intermediate
    embedding = a.vocab * a.hidden * (1 if a.tied else 2)
    if not a.is_moe:
        total = a.layers * (attention + dense_mlp + norms) + embedding + a.hidden
        return ParamCount(total=total, active=total, embedding=embedding, expert=0)
    inter = a.moe_intermediate or a.intermediate
    expert_size = mats * a.hidden * inter
    moe_layers = a.layers - a.dense_layers
    shared = a.shared_experts * expert_size
    router = a.hidden * a.experts
    common = a.layers * (attention + norms) + a.dense_layers * dense_mlp + moe_layers * (shared + router)
    routed_total = moe_layers * a.experts * expert_size
    routed_active = moe_layers * a.active_experts * expert_size
    base = common + embedding + a.hidden
    return ParamCount(
        total=base + routed_total, active=base + routed_active, embedding=embedding, expert=routed_total
    )


def expert_size_params(a: Architecture) -> int:
    """Parameters of one routed expert in one layer."""
    return (3 if a.gated else 2) * a.hidden * (a.moe_intermediate or a.intermediate)


def kv_bytes_per_token(a: Architecture, bytes_per_value: float = 2.0) -> float:
    """KV-cache bytes one token occupies across all layers (whole model, before any TP split)."""
    if a.is_mla:
        return a.layers * (a.kv_lora_rank + a.qk_rope_head_dim) * bytes_per_value
    return 2 * a.layers * a.kv_heads * a.head_dim * bytes_per_value


def kv_shards(a: Architecture, tp: int) -> int:
    """How many ways TP splits the KV cache: KV heads are replicated once tp > kv_heads, and the
    MLA latent is replicated on every rank."""
    return 1 if a.is_mla else min(tp, a.kv_heads)


def _first(cfg: dict[str, Any], *names: str, default: Any = None) -> Any:
    for n in names:
        if cfg.get(n) is not None:
            return cfg[n]
    return default


def architecture_from_hf_config(cfg: dict[str, Any]) -> Architecture:
    """Read a Hugging Face ``config.json`` (Llama, Qwen2, Mistral/Mixtral, Qwen-MoE, DeepSeek-V2/V3,
    ChatGLM/GLM-4, MPT, GPT-NeoX-like names). Multimodal configs use their ``text_config``."""
    if isinstance(cfg.get("text_config"), dict):
        cfg = {
            **cfg["text_config"],
            "model_type": cfg["text_config"].get("model_type", cfg.get("model_type")),
        }
    model_type = str(cfg.get("model_type", "")).lower()
    layers = _first(cfg, "num_hidden_layers", "num_layers", "n_layers", "n_layer")
    hidden = _first(cfg, "hidden_size", "d_model", "n_embd")
    heads = _first(cfg, "num_attention_heads", "n_heads", "n_head")
    vocab = _first(cfg, "vocab_size", "padded_vocab_size")
    if model_type == "chatglm":
        vocab = _first(cfg, "padded_vocab_size", "vocab_size")
    missing = [
        n
        for n, v in (("layers", layers), ("hidden size", hidden), ("heads", heads), ("vocab", vocab))
        if v is None
    ]
    if missing:
        raise ModelConfigError(f"config.json lacks {', '.join(missing)}")
    kv_heads = _first(cfg, "num_key_value_heads", "multi_query_group_num", "n_head_kv", default=heads)
    if model_type == "chatglm" and not cfg.get("multi_query_attention", True):
        kv_heads = heads
    head_dim = _first(cfg, "head_dim", "kv_channels", default=hidden // heads)
    intermediate = _first(cfg, "intermediate_size", "ffn_hidden_size", "n_inner")
    if intermediate is None and "expansion_ratio" in cfg:
        intermediate = int(cfg["expansion_ratio"] * hidden)
    if intermediate is None:
        raise ModelConfigError("config.json lacks intermediate_size")
    gated = model_type not in {"mpt", "gpt_neox", "gpt2", "gptj", "falcon", "opt", "bloom", "starcoder2"}
    experts = int(_first(cfg, "num_local_experts", "n_routed_experts", "num_experts", default=0) or 0)
    moe_inter = int(_first(cfg, "moe_intermediate_size", default=0) or 0)
    shared = int(_first(cfg, "n_shared_experts", default=0) or 0)
    if cfg.get("shared_expert_intermediate_size") and moe_inter:
        shared = max(shared, round(cfg["shared_expert_intermediate_size"] / moe_inter))
    return Architecture(
        layers=int(layers),
        hidden=int(hidden),
        heads=int(heads),
        kv_heads=int(kv_heads),
        head_dim=int(head_dim),
        intermediate=int(intermediate),
        vocab=int(vocab),
        tied=bool(cfg.get("tie_word_embeddings", model_type == "mpt")),
        gated=gated,
        qkv_bias=bool(
            _first(
                cfg,
                "attention_bias",
                "add_qkv_bias",
                "qkv_bias",
                default=model_type in {"qwen2", "qwen2_moe"},
            )
        ),
        experts=experts,
        active_experts=int(_first(cfg, "num_experts_per_tok", default=0) or 0) if experts else 0,
        moe_intermediate=moe_inter if experts else 0,
        shared_experts=shared if experts else 0,
        dense_layers=int(_first(cfg, "first_k_dense_replace", default=0) or 0) if experts else 0,
        kv_lora_rank=int(cfg.get("kv_lora_rank") or 0),
        qk_rope_head_dim=int(cfg.get("qk_rope_head_dim") or 0),
        q_lora_rank=int(cfg.get("q_lora_rank") or 0),
        qk_nope_head_dim=int(cfg.get("qk_nope_head_dim") or 0),
        v_head_dim=int(cfg.get("v_head_dim") or 0),
    )


def load_hf_config(path: str | Path) -> Architecture:
    """Parse a ``config.json`` file into an :class:`Architecture`."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelConfigError(f"{path}: cannot read a JSON config: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelConfigError(f"{path}: a config.json is a JSON object")
    return architecture_from_hf_config(data)
