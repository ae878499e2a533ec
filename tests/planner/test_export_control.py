"""Export classes under the Oct 2022, Oct 2023 and Jan 2026 rules, computed from the specs."""

from __future__ import annotations

import pytest

from sluicegate.planner.catalog import Figure
from sluicegate.planner.export_control import classify, oct2023_class, performance_density, tpp

# planner-facts §4.3 (TPP, PD, Oct 2022, Oct 2023)
EXPECTED = [
    ("t4", 1040, 1.91, False, False),
    ("v100-32g", 2000, 2.45, False, False),
    ("a10", 2000, 3.18, False, False),
    ("a6000", 2477, 3.94, False, False),
    ("rtx-4090", 5285, 8.68, False, True),
    ("l40s", 5864, 9.63, False, True),
    ("a100-40g", 4992, 6.04, True, True),
    ("a100-80g", 4992, 6.04, True, True),
    ("a800-80g", 4992, 6.04, False, True),
    ("h100-80g", 15832, 19.45, True, True),
    ("h800-80g", 15832, 19.45, False, True),
    ("h20", 2368, 2.91, False, False),
    ("l20", 1912, 3.14, False, False),
    ("h200", 15832, 19.45, True, True),
]


@pytest.mark.parametrize(("gpu_id", "want_tpp", "want_pd", "c2022", "c2023"), EXPECTED)
def test_export_class_of_each_card_under_each_rule(catalog, gpu_id, want_tpp, want_pd, c2022, c2023):
    status = classify(catalog.gpu(gpu_id), catalog.export_rules)
    assert status.tpp == pytest.approx(want_tpp, abs=1.5)
    assert status.performance_density == pytest.approx(want_pd, abs=0.01)
    assert (status.oct2022_controlled, status.oct2023_controlled) == (c2022, c2023)


def test_tpp_ignores_sparsity(catalog):
    h100 = catalog.gpu("h100-80g")
    assert tpp(h100) == h100.fp8_tflops.value * 8  # 1979 x 8, not the sparse 3958 x 8


def test_china_skus_pass_the_2022_rule_by_cutting_nvlink_below_600(catalog):
    for gpu_id in ("a800-80g", "h800-80g"):
        g = catalog.gpu(gpu_id)
        assert tpp(g) >= 4800 and g.interconnect_gbs < 600


def test_h20_sits_just_under_both_2023_thresholds(catalog):
    h20 = catalog.gpu("h20")
    assert tpp(h20) < 2400 and performance_density(h20) < 3.2


def test_h20_carries_the_2025_license_requirement_as_a_note(catalog):
    note = classify(catalog.gpu("h20"), catalog.export_rules).note
    assert note is not None and "2025-04" in note


def test_workstation_a6000_is_3a090b_but_exempt_under_note_2(catalog):
    s = classify(catalog.gpu("a6000"), catalog.export_rules)
    assert s.oct2023_class == "3A090.b" and s.oct2023_note2_exempt


def test_consumer_rtx_4090_is_not_exempt_because_its_tpp_reaches_4800(catalog):
    s = classify(catalog.gpu("rtx-4090"), catalog.export_rules)
    assert s.oct2023_class == "3A090.a" and not s.oct2023_note2_exempt


def test_h100_falls_under_the_2026_case_by_case_review(catalog):
    assert classify(catalog.gpu("h100-80g"), catalog.export_rules).jan2026 == "case-by-case license review"


def test_a_new_datacenter_sku_in_the_3a090b_band_is_classified_from_its_specs(catalog):
    rules = catalog.export_rules["rules"]["oct2023"]
    assert oct2023_class(4000, 4.0, rules) == "3A090.b"
    assert oct2023_class(1700, 6.0, rules) == "3A090.a"
    assert oct2023_class(2300, 3.1, rules) is None


def test_a_card_beyond_the_2026_thresholds_stays_presumed_denied(catalog):
    h200 = catalog.gpu("h200")
    faster = h200.model_copy(update={"fp8_tflops": Figure(value=3000, source="test", date="2026-01")})
    assert classify(faster, catalog.export_rules).jan2026 == "presumption of denial"
