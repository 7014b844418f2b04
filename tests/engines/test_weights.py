"""Where checkpoints go and what a pull fetches, without the network (none is reachable)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reelserve.engines.profiles import Checkpoint
from reelserve.engines.weights import (
    WeightsError,
    allow_patterns,
    checkpoint_folder,
    is_present,
    localise_modular_index,
)

PIPELINE_INDEX = {
    "_class_name": "LTX2Pipeline",
    "transformer": ["diffusers", "LTX2VideoTransformer3DModel"],
    "connectors": ["ltx2", "LTX2TextConnectors"],
    "processor": [None, None],
}


def test_checkpoint_folders(tmp_path: Path) -> None:
    assert checkpoint_folder(tmp_path, Checkpoint(hub="a/b")) == tmp_path / "hub" / "a--b"
    pinned = checkpoint_folder(tmp_path, Checkpoint(hub="a/b", revision="refs/pr/2"))
    assert pinned == tmp_path / "hub" / "a--b@refs_pr_2"
    assert checkpoint_folder(tmp_path, Checkpoint(tiny="x")) == tmp_path / "tiny" / "x"
    assert checkpoint_folder(tmp_path, Checkpoint(path=Path("/w"))) == Path("/w")


def test_a_hub_checkpoint_is_present_only_once_its_pull_completed(tmp_path: Path) -> None:
    hub = Checkpoint(hub="a/b")
    (tmp_path / "model_index.json").write_text("{}")
    assert not is_present(hub, tmp_path)  # an interrupted pull leaves files but no marker
    assert is_present(Checkpoint(path=tmp_path), tmp_path)
    (tmp_path / ".reelserve-pulled.json").write_text("{}")
    assert is_present(hub, tmp_path)


def test_a_pull_fetches_only_the_components_the_index_names() -> None:
    patterns = allow_patterns(PIPELINE_INDEX)
    assert "model_index.json" in patterns
    assert "transformer/*.safetensors" in patterns
    assert "connectors/*.json" in patterns
    assert not any(p.startswith(("processor/", "_class_name/")) for p in patterns)
    assert not any(p.endswith((".bin", ".pth", ".ckpt")) for p in patterns)


def test_a_modular_index_is_pointed_at_the_local_folder(tmp_path: Path) -> None:
    index = {
        "_class_name": "WanAnimate2ModularPipeline",
        "transformer": [
            "diffusers",
            "WanAnimate2Transformer3DModel",
            {"pretrained_model_name_or_path": "o/r", "revision": "refs/pr/2", "subfolder": "tr"},
        ],
    }
    path = tmp_path / "modular_model_index.json"
    path.write_text(json.dumps(index))
    assert allow_patterns(index)[2] == "tr/*.json"
    localise_modular_index(Checkpoint(hub="o/r"), path)
    spec = json.loads(path.read_text())["transformer"][2]
    assert (spec["pretrained_model_name_or_path"], spec["revision"]) == (None, None)
    assert spec["subfolder"] == "tr"

    index["transformer"][2]["pretrained_model_name_or_path"] = "elsewhere/repo"  # type: ignore[index]
    path.write_text(json.dumps(index))
    with pytest.raises(WeightsError, match="'transformer' comes from another repository"):
        localise_modular_index(Checkpoint(hub="o/r"), path)
