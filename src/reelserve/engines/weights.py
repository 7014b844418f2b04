"""Where a profile's checkpoints live, whether they are there, and getting them there.

Layout under the models folder (``settings.models_dir``, default ``<data_dir>/models``):

- ``hub/<owner>--<name>[@<revision>]/``: a hub checkpoint pulled by ``reelserve models pull``
  (``snapshot_download(local_dir=...)``: plain files, no symlinks into a cache, so the folder
  can be copied or mounted read-only on every worker, and its size is what ``du`` says).
  ``.reelserve-pulled.json`` is written last and marks it complete.
- ``tiny/<name>/``: tiny random-weight checkpoints built locally (``reelserve-tiny.json``).
- Local-folder checkpoints (``checkpoint = { path = ... }``) are used in place.

Nothing here downloads unless :func:`pull` is called; serve and worker call
:func:`stay_offline` first, so loading never touches the network either.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reelserve.engines.profiles import QUALITIES, Checkpoint, EngineFamily, ModeSpec, Profile

log = logging.getLogger(__name__)

PULLED_MARKER = ".reelserve-pulled.json"
TINY_MARKER = "reelserve-tiny.json"
INDEX_FILES = ("model_index.json", "modular_model_index.json")
# What a diffusers-format component folder needs: configs, safetensors weights and their
# shard indexes, tokenizer vocabularies. Not *.bin / *.pth / *.ckpt duplicates, nor the
# single-file checkpoints some repositories also keep at the top level.
_COMPONENT_FILES = ("*.json", "*.safetensors", "*.txt", "*.model", "*.tiktoken")

# Module and class per family, imported only when a profile uses the family.
ENGINE_CLASSES: dict[EngineFamily, tuple[str, str]] = {
    "ltx2": ("reelserve.engines.ltx2", "LTX2Engine"),
    "wan": ("reelserve.engines.wan", "WanEngine"),
    "wan_animate": ("reelserve.engines.wan_animate", "WanAnimateEngine"),
}

Echo = Callable[[str], None]


class WeightsError(RuntimeError):
    """A checkpoint could not be fetched, built or found."""


def stay_offline() -> None:
    """Forbid the hub client any network access in this process (serve, worker, check)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    constants: Any = importlib.import_module("huggingface_hub.constants")
    constants.HF_HUB_OFFLINE = True


def checkpoint_folder(models_dir: Path, checkpoint: Checkpoint) -> Path:
    if checkpoint.path is not None:
        return checkpoint.path
    if checkpoint.tiny is not None:
        return models_dir / "tiny" / checkpoint.tiny
    assert checkpoint.hub is not None
    name = checkpoint.hub.replace("/", "--")
    if checkpoint.revision:
        name += f"@{checkpoint.revision.replace('/', '_')}"
    return models_dir / "hub" / name


def is_present(checkpoint: Checkpoint, folder: Path) -> bool:
    if checkpoint.tiny is not None:
        return (folder / TINY_MARKER).is_file()
    if checkpoint.hub is not None:
        return (folder / PULLED_MARKER).is_file()
    return any((folder / index).is_file() for index in INDEX_FILES)


def engine_unavailable(family: EngineFamily) -> str | None:
    """Why the family's engine module cannot be used here, or None. Imports nothing."""
    module = ENGINE_CLASSES[family][0]
    if importlib.util.find_spec(module) is None:
        return f"engine family {family!r} is not installed here (no module {module})"
    return None


def folder_size(folder: Path) -> int:
    """Bytes of the files under ``folder`` (links not followed; download scratch included)."""
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += (Path(root) / name).lstat().st_size
            except OSError:
                continue
    return total


@dataclass(frozen=True)
class CheckpointReport:
    checkpoint: Checkpoint
    family: EngineFamily
    folder: Path
    present: bool
    size_bytes: int
    # The modes that use it, with the quality when only one of the two does.
    used_by: tuple[str, ...]


def survey(profile: Profile, models_dir: Path) -> list[CheckpointReport]:
    """Each checkpoint of ``profile``: where it goes, whether it is there, its size."""
    reports: list[CheckpointReport] = []
    for checkpoint in profile.checkpoints():
        folder = checkpoint_folder(models_dir, checkpoint)
        users = tuple(
            _user(mode.value, spec, checkpoint)
            for mode, spec in profile.modes.items()
            if checkpoint in (spec.standard.checkpoint, spec.pro.checkpoint)
        )
        family = next(s.family for s in profile.specs() if s.checkpoint == checkpoint)
        present = is_present(checkpoint, folder)
        size = folder_size(folder) if folder.is_dir() else 0
        reports.append(CheckpointReport(checkpoint, family, folder, present, size, users))
    return reports


def _user(mode: str, spec: ModeSpec, checkpoint: Checkpoint) -> str:
    qualities = [q for q in QUALITIES if spec.for_quality(q).checkpoint == checkpoint]
    return mode if len(qualities) == len(QUALITIES) else f"{mode} ({qualities[0]})"


def missing_reason(profile: Profile, checkpoint: Checkpoint, models_dir: Path) -> str | None:
    """Why ``checkpoint`` cannot be loaded (not there), or None when it is there."""
    folder = checkpoint_folder(models_dir, checkpoint)
    if is_present(checkpoint, folder):
        return None
    if checkpoint.path is not None:
        return f"checkpoint folder {folder} has no {' or '.join(INDEX_FILES)}"
    return (
        f"checkpoint {checkpoint} is not in {folder}; "
        f"run `reelserve models pull {profile.source or profile.name}`"
    )


# -- pull -------------------------------------------------------------------------------------


def pull(profile: Profile, models_dir: Path, echo: Echo) -> list[Path]:
    """Fetch (hub) or build (tiny) every checkpoint of ``profile`` that is not there yet."""
    folders: list[Path] = []
    for report in survey(profile, models_dir):
        checkpoint, folder = report.checkpoint, report.folder
        if report.present:
            echo(f"{checkpoint}: present in {folder}")
        elif checkpoint.tiny is not None:
            from reelserve.engines.tiny import ensure_tiny_checkpoint

            echo(f"{checkpoint}: building random weights in {folder}")
            ensure_tiny_checkpoint(report.family, folder)
        elif checkpoint.path is not None:
            raise WeightsError(
                f"{checkpoint}: a local folder is used in place and cannot be pulled; "
                f"it has no {' or '.join(INDEX_FILES)}"
            )
        else:
            echo(f"{checkpoint}: downloading into {folder}")
            _pull_hub(checkpoint, folder)
        folders.append(folder)
    return folders


def _pull_hub(checkpoint: Checkpoint, folder: Path) -> None:
    assert checkpoint.hub is not None
    hub = importlib.import_module("huggingface_hub")
    if importlib.import_module("huggingface_hub.constants").HF_HUB_OFFLINE:
        raise WeightsError(
            f"{checkpoint}: cannot download: offline mode is on (HF_HUB_OFFLINE=1); "
            "pull on a machine with network access and copy the models folder"
        )
    folder.mkdir(parents=True, exist_ok=True)
    try:
        index_name, index = _fetch_index(hub, checkpoint, folder)
        patterns = allow_patterns(index)
        # Resumable: files already complete in ``folder`` are skipped, partial ones continued.
        hub.snapshot_download(
            checkpoint.hub,
            revision=checkpoint.revision,
            local_dir=folder,
            allow_patterns=patterns,
        )
    except WeightsError:
        raise
    except Exception as exc:
        raise WeightsError(f"{checkpoint}: download failed: {type(exc).__name__}: {exc}") from exc
    if index_name == "modular_model_index.json":
        localise_modular_index(checkpoint, folder / index_name)
    marker = {
        "hub": checkpoint.hub,
        "revision": checkpoint.revision,
        "allow_patterns": patterns,
        "pulled_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (folder / PULLED_MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")


def _fetch_index(hub: Any, checkpoint: Checkpoint, folder: Path) -> tuple[str, dict[str, Any]]:
    """The repository's pipeline index (modular first: it is what a modular engine loads)."""
    for name in reversed(INDEX_FILES):
        try:
            path = hub.hf_hub_download(
                checkpoint.hub, name, revision=checkpoint.revision, local_dir=folder
            )
        except importlib.import_module("huggingface_hub.errors").EntryNotFoundError:
            continue
        index: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
        return name, index
    raise WeightsError(f"{checkpoint}: not a diffusers-format repository (no pipeline index)")


def _components(index: dict[str, Any]) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    """(name, library, class, load spec) of each component an index names."""
    for name, entry in index.items():
        if name.startswith("_") or not isinstance(entry, list) or len(entry) < 2:
            continue
        library, class_name = entry[0], entry[1]
        if library is None or class_name is None:
            continue
        spec = entry[2] if len(entry) > 2 and isinstance(entry[2], dict) else {}
        yield name, str(library), str(class_name), spec


def allow_patterns(index: dict[str, Any]) -> list[str]:
    """The files to fetch for a pipeline index: the index and each component's folder."""
    folders = [spec.get("subfolder") or name for name, _lib, _cls, spec in _components(index)]
    return [
        *INDEX_FILES,
        *(f"{folder}/{pattern}" for folder in folders for pattern in _COMPONENT_FILES),
    ]


def localise_modular_index(checkpoint: Checkpoint, index_path: Path) -> None:
    """Point every component of a pulled modular index at the local folder.

    The hub's index names the repository (sometimes a pinned pull-request revision) for each
    component; loaded from our folder with ``local_files_only`` that would look in the hub
    cache instead. Components from another repository are not supported.
    """
    index = json.loads(index_path.read_text(encoding="utf-8"))
    for name, _library, _class, spec in _components(index):
        source = spec.get("pretrained_model_name_or_path")
        if source not in (None, checkpoint.hub):
            raise WeightsError(
                f"{checkpoint}: component {name!r} comes from another repository ({source})"
            )
        spec["pretrained_model_name_or_path"] = None
        spec["revision"] = None
    index_path.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n", encoding="utf-8")


# -- check ------------------------------------------------------------------------------------


def check(profile: Profile, models_dir: Path, echo: Echo) -> list[str]:
    """Load every component of every checkpoint from disk; the problems found (empty: fine)."""
    stay_offline()
    problems: list[str] = []
    for family in sorted({spec.family for spec in profile.specs()}):
        reason = engine_unavailable(family)
        if reason is not None:
            modes = [m.value for m, s in profile.modes.items() if family in _families(s)]
            problems.append(f"{', '.join(modes)}: {reason}")
    for report in survey(profile, models_dir):
        reason = missing_reason(profile, report.checkpoint, models_dir)
        if reason is not None:
            problems.append(f"{', '.join(report.used_by)}: {reason}")
            continue
        broken = _load_components(report.folder)
        problems.extend(f"{report.checkpoint}: {problem}" for problem in broken)
        if not broken:
            echo(f"{report.checkpoint}: every component loads ({report.folder})")
    return problems


def _families(spec: ModeSpec) -> set[str]:
    return {spec.standard.family, spec.pro.family}


def _load_components(folder: Path) -> list[str]:
    """Load each component with ``from_pretrained(..., local_files_only=True)``, one at a
    time and released at once, so a check needs the memory of the largest one only."""
    index_path = next((folder / name for name in INDEX_FILES if (folder / name).is_file()), None)
    if index_path is None:
        return [f"no {' or '.join(INDEX_FILES)} in {folder}"]
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        return [f"{index_path.name} is not valid JSON ({exc})"]
    import torch

    problems: list[str] = []
    for name, library, class_name, spec in _components(index):
        subfolder = spec.get("subfolder") or name
        try:
            component_class = _component_class(library, class_name)
            options: dict[str, Any] = {"subfolder": subfolder, "local_files_only": True}
            if isinstance(component_class, type) and issubclass(component_class, torch.nn.Module):
                options["torch_dtype"] = torch.bfloat16  # half the memory of float32
            loaded = component_class.from_pretrained(str(folder), **options)
            del loaded
        except Exception as exc:
            problems.append(f"component {name!r} ({class_name}) does not load: {exc}")
    return problems


def _component_class(library: str, class_name: str) -> Any:
    """The class an index names: ``diffusers``/``transformers`` or a diffusers pipeline
    module such as ``ltx2`` (as diffusers itself resolves it)."""
    try:
        module = importlib.import_module(library)
    except ImportError:
        module = importlib.import_module(f"diffusers.pipelines.{library}")
    if not hasattr(module, class_name):
        module = importlib.import_module(f"diffusers.pipelines.{library}")
    return getattr(module, class_name)
