"""The planner's catalog: GPUs, cloud price rows, models, API prices and export rules.

The data lives in YAML files under ``planner/data`` so that a figure can be checked against its
source without reading code; this module validates it with pydantic (every figure must carry a
``source`` and a ``date``) and returns plain frozen objects. Nothing is read at import time:
callers ask for a :class:`Catalog` with :func:`load_catalog`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_DATE = re.compile(r"^\d{4}-\d{2}(-\d{2})?$")


class CatalogError(ValueError):
    """A data file (bundled or the user's) is malformed; the message says where."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Figure(_Strict):
    """One number with where it came from and when it was published."""

    value: float
    source: str
    date: str

    @field_validator("date")
    @classmethod
    def _date_shape(cls, v: str) -> str:
        if not _DATE.match(v):
            raise ValueError(f"date must be YYYY-MM or YYYY-MM-DD, got {v!r}")
        return v


class Gpu(_Strict):
    """A GPU as the estimator needs it: memory, bandwidth, dense throughput, links, die area."""

    id: str
    name: str
    market: str
    form: str
    datacenter: bool
    api_only: bool = False
    memory_gb: Figure
    memory_mib: Figure | None = None  # what the driver reports (nvidia-smi memory.total)
    bandwidth_gbs: Figure
    fp16_tflops: Figure
    fp16_tflops_sparse: Figure | None = None
    bf16: bool
    fp8_tflops: Figure | None = None
    fp8_tflops_sparse: Figure | None = None
    int8_tops: Figure | None = None
    int8_tops_sparse: Figure | None = None
    int4_tops: Figure | None = None
    tdp_w: Figure
    pcie_gbs: Figure | None = None
    nvlink_gbs: Figure | None = None
    nvlink_domain: int = 0
    die_area_mm2: Figure | None = None
    price_cny: Figure | None = None
    notes: tuple[str, ...] = ()

    @property
    def memory_bytes(self) -> float:
        """Usable capacity in bytes: the driver's MiB where known, else the vendor's GB read as
        decimal (10^9), which is conservative: T4, A10 and L40S "GB" are decimal, A100's binary."""
        if self.memory_mib is not None:
            return self.memory_mib.value * 2**20
        return self.memory_gb.value * 1e9

    @property
    def interconnect_gbs(self) -> float:
        """Aggregate bidirectional I/O (NVLink + PCIe): the 2022 rule's second parameter."""
        return sum(f.value for f in (self.pcie_gbs, self.nvlink_gbs) if f is not None)


class PriceRow(_Strict):
    """One cloud instance type and its hourly price, for the whole instance."""

    provider: str
    region: str
    instance: str
    gpu: tuple[str, ...]
    gpus: int = Field(ge=1)
    vcpu: float | None = None
    memory_gib: float | None = None
    price_per_hour: float = Field(ge=0)
    currency: str
    billing: str = "on-demand"
    source: str
    date: str
    note: str | None = None

    @field_validator("gpu", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return (v,) if isinstance(v, str) else v

    @field_validator("currency")
    @classmethod
    def _currency(cls, v: str) -> str:
        if v.upper() not in {"CNY", "USD"}:
            raise ValueError("currency must be CNY or USD")
        return v.upper()

    @field_validator("date")
    @classmethod
    def _date_shape(cls, v: str) -> str:
        return Figure._date_shape(v)

    @property
    def key(self) -> tuple[str, str, str]:
        """Identity for overriding: a user row with the same key replaces the bundled one."""
        return (self.provider.lower(), self.region.lower(), self.instance.lower())

    @property
    def per_gpu_hour(self) -> float:
        return self.price_per_hour / self.gpus


class ApiPrice(_Strict):
    """A hosted API's list price per million tokens."""

    name: str
    provider: str
    currency: str
    input_per_m: float = Field(ge=0)
    output_per_m: float = Field(ge=0)
    tokens_per_s: float | None = None
    source: str
    date: str


class ModelEntry(_Strict):
    """A named model: its config.json architecture block and, where known, a published count."""

    name: str
    hf_id: str
    source: str
    date: str
    architecture: dict[str, Any]
    params_published: Figure | None = None


class Source(_Strict):
    title: str
    url: str
    note: str | None = None


class _GpuFile(_Strict):
    sources: dict[str, Source]
    gpus: tuple[Gpu, ...]

    @model_validator(mode="after")
    def _sources_exist(self) -> _GpuFile:
        for gpu in self.gpus:
            for name, value in gpu:
                if isinstance(value, Figure) and value.source not in self.sources:
                    raise ValueError(f"{gpu.id}.{name}: unknown source {value.source!r}")
        ids = [g.id for g in self.gpus]
        if len(ids) != len(set(ids)):
            raise ValueError("duplicate GPU id")
        return self


class Unpriced(_Strict):
    """A provider that rents these GPUs, with no hourly price that could be sourced: said, not guessed."""

    provider: str
    gpu: tuple[str, ...]
    source: str
    date: str
    note: str


class _CloudFile(_Strict):
    rows: tuple[PriceRow, ...] = ()
    unpriced: tuple[Unpriced, ...] = ()
    fx: dict[str, Figure] = {}


@dataclass(frozen=True)
class Catalog:
    """Everything the planner knows, validated; lookups by id raise ``KeyError`` with the choices."""

    sources: dict[str, Source]
    gpus: tuple[Gpu, ...]
    prices: tuple[PriceRow, ...]
    models: tuple[ModelEntry, ...]
    apis: tuple[ApiPrice, ...]
    export_rules: dict[str, Any]
    cny_per_usd: Figure
    unpriced: tuple[Unpriced, ...] = ()

    def gpu(self, gpu_id: str) -> Gpu:
        for g in self.gpus:
            if g.id == gpu_id.lower():
                return g
        raise KeyError(f"unknown GPU {gpu_id!r}; known: {', '.join(g.id for g in self.gpus)}")

    def model(self, name: str) -> ModelEntry:
        for m in self.models:
            if m.name == name.lower() or m.hf_id.lower() == name.lower():
                return m
        raise KeyError(f"unknown model {name!r}; known: {', '.join(m.name for m in self.models)}")

    def api(self, name: str) -> ApiPrice:
        for a in self.apis:
            if a.name == name.lower():
                return a
        raise KeyError(f"unknown API price {name!r}; known: {', '.join(a.name for a in self.apis)}")

    def prices_for(self, gpu_id: str) -> tuple[PriceRow, ...]:
        return tuple(r for r in self.prices if gpu_id in r.gpu)

    def unpriced_for(self, gpu_id: str) -> tuple[Unpriced, ...]:
        """Providers known to rent ``gpu_id`` without a sourced price (minus any the user priced)."""
        priced = {r.provider.lower() for r in self.prices_for(gpu_id)}
        return tuple(u for u in self.unpriced if gpu_id in u.gpu and u.provider.lower() not in priced)

    def with_price_rows(self, rows: tuple[PriceRow, ...]) -> Catalog:
        """A copy where ``rows`` add to the price list and replace rows with the same key."""
        merged = {r.key: r for r in self.prices}
        for r in rows:
            merged[r.key] = r
        return Catalog(
            self.sources,
            self.gpus,
            tuple(merged.values()),
            self.models,
            self.apis,
            self.export_rules,
            self.cny_per_usd,
            self.unpriced,
        )

    def with_cny_per_usd(self, rate: float) -> Catalog:
        fx = Figure(value=rate, source="user (--cny-per-usd)", date=self.cny_per_usd.date)
        return Catalog(
            self.sources, self.gpus, self.prices, self.models, self.apis, self.export_rules, fx, self.unpriced
        )


_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml is ~10x faster where present


def _yaml(text: str) -> Any:
    return yaml.load(text, Loader=_YamlLoader)


def _read_text(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text) if path.suffix.lower() == ".json" else _yaml(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise CatalogError(
            f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}"
        ) from exc


def _bundled(name: str) -> Any:
    return _yaml(resources.files("sluicegate.planner").joinpath("data", name).read_text("utf-8"))


def _validate(kind: type[BaseModel], data: Any, where: str) -> Any:
    try:
        return kind.model_validate(data)
    except ValueError as exc:
        raise CatalogError(f"{where}: {exc}") from exc


def load_catalog() -> Catalog:
    """Read and validate the bundled data files."""
    gpu_file = _validate(_GpuFile, _bundled("gpus.yaml"), "gpus.yaml")
    cloud_file = _validate(_CloudFile, _bundled("clouds.yaml"), "clouds.yaml")
    models = tuple(_validate(ModelEntry, m, "models.yaml") for m in _bundled("models.yaml")["models"])
    apis = tuple(_validate(ApiPrice, a, "api_prices.yaml") for a in _bundled("api_prices.yaml")["apis"])
    rules = _bundled("export_rules.yaml")
    catalog = Catalog(
        gpu_file.sources,
        gpu_file.gpus,
        cloud_file.rows,
        models,
        apis,
        rules,
        cloud_file.fx["cny_per_usd"],
        cloud_file.unpriced,
    )
    for gids in [r.gpu for r in catalog.prices] + [u.gpu for u in catalog.unpriced]:
        for gid in gids:
            catalog.gpu(gid)
    return catalog


def load_price_file(path: str | Path, catalog: Catalog) -> tuple[PriceRow, ...]:
    """Validate a user's price file (YAML or JSON, ``rows: [...]`` or a bare list)."""
    path = Path(path)
    data = _read_text(path)
    rows = data.get("rows") if isinstance(data, dict) else data
    if not isinstance(rows, list):
        raise CatalogError(f"{path}: expected a list of price rows, or a mapping with 'rows'")
    parsed = tuple(_validate(PriceRow, r, f"{path} row {i + 1}") for i, r in enumerate(rows))
    for i, row in enumerate(parsed):
        for gid in row.gpu:
            try:
                catalog.gpu(gid)
            except KeyError as exc:
                raise CatalogError(f"{path} row {i + 1}: {exc.args[0]}") from exc
    return parsed
