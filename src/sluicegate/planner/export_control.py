"""US export-control classification of a GPU (ECCN 3A090), computed from its specs.

TPP ("total processing performance") is 2 × MacTOPS × bit length, i.e. the dense datasheet
TOPS × bit length, maximised over precisions; sparsity does not count. Performance density is
TPP / die area (mm²). The thresholds come from ``data/export_rules.yaml``:

* Oct 2022 (87 FR 62186): controlled if TPP ≥ 4800 AND aggregate bidirectional I/O
  (NVLink + PCIe, not memory bandwidth) ≥ 600 GB/s. This is why A800/H800 cut NVLink to 400.
* Oct 2023 (88 FR 73458, effective 2023-11-17): 3A090.a if TPP ≥ 4800, or TPP ≥ 1600 and
  PD ≥ 5.92; 3A090.b if 2400 ≤ TPP < 4800 and 1.6 ≤ PD < 5.92, or TPP ≥ 1600 and
  3.2 ≤ PD < 5.92. Note 2 exempts items not designed or marketed for datacenters with TPP < 4800.
* Jan 2026 (91 FR 1684): controlled items with TPP < 21000 and DRAM bandwidth < 6500 GB/s are
  licensed case by case for China rather than presumed denied.

Non-parametric actions (the 2025 H20 license letter) are carried as per-SKU notes.
Computing from specs, not a hard-coded table, classifies a new SKU as soon as it is cataloged.
This is planning information, not legal advice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sluicegate.planner.catalog import Gpu

DISCLAIMER = (
    "Export classes are computed from datasheet figures against 3A090 as published "
    "(2022-10-07, 2023-11-17, 2026-01-15); not legal advice."
)


def tpp(gpu: Gpu) -> float:
    """Total processing performance: max over precisions of dense TOPS × bit length."""
    candidates = [gpu.fp16_tflops.value * 16]
    for figure, bits in ((gpu.fp8_tflops, 8), (gpu.int8_tops, 8), (gpu.int4_tops, 4)):
        if figure is not None:
            candidates.append(figure.value * bits)
    return max(candidates)


def performance_density(gpu: Gpu) -> float | None:
    """TPP per mm² of die; None when the die area is not cataloged."""
    if gpu.die_area_mm2 is None:
        return None
    return tpp(gpu) / gpu.die_area_mm2.value


@dataclass(frozen=True)
class ExportStatus:
    tpp: float
    performance_density: float | None
    oct2022_controlled: bool
    oct2023_class: str | None  # "3A090.a", "3A090.b" or None
    oct2023_note2_exempt: bool
    jan2026: str
    note: str | None

    @property
    def oct2023_controlled(self) -> bool:
        return self.oct2023_class is not None and not self.oct2023_note2_exempt

    def as_dict(self) -> dict[str, Any]:
        return {
            "tpp": round(self.tpp, 1),
            "performance_density": None
            if self.performance_density is None
            else round(self.performance_density, 2),
            "oct2022_controlled": self.oct2022_controlled,
            "oct2023_controlled": self.oct2023_controlled,
            "oct2023_class": self.oct2023_class,
            "oct2023_note2_exempt": self.oct2023_note2_exempt,
            "jan2026": self.jan2026,
            "note": self.note,
        }


def oct2023_class(t: float, pd: float | None, r: dict[str, Any]) -> str | None:
    """3A090.a / .b under the 2023 rule; an unknown die area is judged on TPP alone."""
    if t >= r["a1_tpp_min"]:
        return "3A090.a"
    if pd is None:
        return None
    if t >= r["a2_tpp_min"] and pd >= r["a2_pd_min"]:
        return "3A090.a"
    if r["b1_tpp_min"] <= t < r["b1_tpp_max"] and r["b1_pd_min"] <= pd < r["b1_pd_max"]:
        return "3A090.b"
    if t >= r["b2_tpp_min"] and r["b2_pd_min"] <= pd < r["b2_pd_max"]:
        return "3A090.b"
    return None


def classify(gpu: Gpu, rules: dict[str, Any]) -> ExportStatus:
    """Classify ``gpu`` under each rule in ``rules`` (the parsed export_rules.yaml)."""
    t, pd = tpp(gpu), performance_density(gpu)
    r22, r23, r26 = rules["rules"]["oct2022"], rules["rules"]["oct2023"], rules["rules"]["jan2026"]
    c22 = t >= r22["tpp_min"] and gpu.interconnect_gbs >= r22["interconnect_gbs_min"]
    cls = oct2023_class(t, pd, r23)
    exempt = cls is not None and not gpu.datacenter and t < r23["note2_tpp_max"]
    if gpu.api_only:
        j26 = "not assessed (API-only reference)"
    elif cls is None or exempt:
        j26 = "not controlled by 3A090"
    elif t < r26["tpp_max"] and gpu.bandwidth_gbs.value < r26["dram_bandwidth_gbs_max"]:
        j26 = "case-by-case license review"
    else:
        j26 = "presumption of denial"
    return ExportStatus(
        tpp=t,
        performance_density=pd,
        oct2022_controlled=c22,
        oct2023_class=cls,
        oct2023_note2_exempt=exempt,
        jan2026=j26,
        note=rules.get("known_status", {}).get(gpu.id),
    )
