"""Full-size architectures built on the meta device match the published parameter counts."""

from __future__ import annotations

import pytest
import torch

from reelserve.engines.fullsize import (
    WAN_T2V_14B_TRANSFORMER,
    build_full_size,
    full_size_components,
    parameter_count,
)
from reelserve.engines.libraries import diffusers
from reelserve.engines.profiles import EngineFamily

# Builds models with tens of billions of (meta) parameters: seconds of Python each.
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("family", ["ltx2", "wan_animate"])
def test_full_size_components_match_the_published_sizes(family: EngineFamily) -> None:
    modules = build_full_size(family, "meta", torch.bfloat16)

    checked = 0
    for component in full_size_components(family):
        module = modules[component.name]
        assert all(p.device.type == "meta" for p in module.parameters())
        assert {p.dtype for p in module.parameters()} == {torch.bfloat16}
        billions = parameter_count(module) / 1e9
        assert billions > 0
        if component.published_billions is not None:
            assert billions == pytest.approx(component.published_billions, rel=0.03), component.name
            checked += 1
    assert checked >= 2


def test_the_default_dtype_is_restored_after_a_build() -> None:
    build_full_size("wan_animate", "meta", torch.bfloat16)
    assert torch.get_default_dtype() == torch.float32


def test_the_wan_text_to_video_trunk_is_the_14b_in_the_name() -> None:
    with torch.device("meta"):
        trunk = diffusers().WanTransformer3DModel(**WAN_T2V_14B_TRANSFORMER)
    assert parameter_count(trunk) / 1e9 == pytest.approx(14.0, rel=0.03)
