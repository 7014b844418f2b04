"""Read and validate profile files (TOML, stdlib ``tomllib``) into :class:`Profile` objects.

Layout (every key is documented in docs/engines.md)::

    description = "..."

    [modes.text-to-video]           # text-to-video, image-to-video, first-last-frame,
    family = "ltx2"                 # motion-control; a profile may leave modes out
    audio = "native"                # native | silent_track | none (not for motion-control)
    dtype = "bfloat16"
    memory = "resident"
    speed = { attention_backend = "auto", compile_repeated_blocks = true }
    render_size = { long_side = 1280, frames = 121 }

    [modes.text-to-video.standard]  # and .pro; each may override any engine key above
    checkpoint = "owner/repo"       # hub id, or { hub = "owner/repo", revision = "..." },
    steps = 8                       # or { path = "/models/x" } (relative: to this file),
    guidance = 1.0                  # or { tiny = "ltx2" } (random weights, built locally)
    distilled = true

    [modes.image-to-video]
    like = "text-to-video"          # start from another mode's table, override keys here

Keys set on the mode apply to both qualities unless a quality table sets them. Every error
names the profile, the key path and the rule, e.g.
``profile ltx2: modes.text-to-video.standard.steps: must be a positive integer``; unknown
keys are errors too.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from reelserve.core.capabilities import AUDIO_POLICIES, AudioPolicy
from reelserve.core.render import Mode
from reelserve.engines.profiles import (
    ENGINE_FAMILIES,
    GPU_DTYPES,
    NATIVE_AUDIO_FAMILIES,
    QUALITIES,
    TINY_FAMILIES,
    Checkpoint,
    EngineFamily,
    EngineSpec,
    GpuDtype,
    ModeSpec,
    Profile,
    QualityTable,
    RenderSize,
    Sampling,
)
from reelserve.engines.speed import MEMORY_MODES, MemoryMode, SpeedOptions

BUILTIN_PACKAGE = "reelserve.engines"
BUILTIN_FOLDER = "builtin"

_TOP_KEYS = {"description", "modes"}
# Keys that describe the engine and may sit on the mode (for both qualities) or a quality.
_ENGINE_KEYS = {
    "family",
    "checkpoint",
    "steps",
    "guidance",
    "distilled",
    "dtype",
    "memory",
    "speed",
    "render_size",
    "segment_frames",
}
_MODE_KEYS = _ENGINE_KEYS | {"like", "audio", *QUALITIES}
_REQUIRED = ("family", "checkpoint", "steps", "guidance")
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_PATH_PREFIXES = ("/", "./", "../", "~")


class ProfileError(ValueError):
    """A profile that cannot be used: names the profile, the key path and the rule."""

    def __init__(self, profile: str, path: str, rule: str) -> None:
        self.profile, self.path, self.rule = profile, path, rule
        where = f"{path}: " if path else ""
        super().__init__(f"profile {profile}: {where}{rule}")


def builtin_names() -> list[str]:
    folder = resources.files(BUILTIN_PACKAGE) / BUILTIN_FOLDER
    return sorted(
        entry.name.removesuffix(".toml")
        for entry in folder.iterdir()
        if entry.name.endswith(".toml")
    )


def load_profile(name_or_path: str) -> Profile:
    """A built-in profile by name, or the profile in a ``.toml`` file."""
    if name_or_path.endswith(".toml") or "/" in name_or_path or "\\" in name_or_path:
        path = Path(name_or_path).expanduser()
        if not path.is_file():
            raise ProfileError(path.stem, "", f"no profile file at {path}")
        return parse_profile(path.read_text(encoding="utf-8"), path.stem, path.resolve())
    known = builtin_names()
    if name_or_path not in known:
        raise ProfileError(
            name_or_path,
            "",
            f"unknown engine profile (built-in: {', '.join(known)}; or a path to a .toml file)",
        )
    resource = resources.files(BUILTIN_PACKAGE) / BUILTIN_FOLDER / f"{name_or_path}.toml"
    # No source: a built-in is referred to by name, and names no relative folders.
    return parse_profile(resource.read_text(encoding="utf-8"), name_or_path)


def parse_profile(text: str, name: str, source: Path | None = None) -> Profile:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(name, "", f"not valid TOML ({exc})") from None
    return _Reader(name, source).profile(document)


class _Reader:
    def __init__(self, name: str, source: Path | None) -> None:
        self.name = name
        self.source = source

    def fail(self, path: str, rule: str) -> ProfileError:
        return ProfileError(self.name, path, rule)

    # -- structure ----------------------------------------------------------------------------

    def profile(self, document: Mapping[str, Any]) -> Profile:
        self.no_unknown(document, _TOP_KEYS, "")
        description = document.get("description", "")
        if not isinstance(description, str):
            raise self.fail("description", "must be a string")
        modes_table = document.get("modes")
        if not isinstance(modes_table, Mapping) or not modes_table:
            raise self.fail("modes", "must be a table naming at least one mode")
        known = [mode.value for mode in Mode]
        for key in modes_table:
            if key not in known:
                raise self.fail(f"modes.{key}", f"unknown mode (known: {', '.join(known)})")
        modes = {Mode(key): self.mode_spec(key, modes_table) for key in known if key in modes_table}
        return Profile(name=self.name, modes=modes, description=description, source=self.source)

    def no_unknown(self, table: Mapping[str, Any], allowed: set[str], path: str) -> None:
        for key in table:
            if key not in allowed:
                where = f"{path}.{key}" if path else key
                raise self.fail(where, f"unknown key (allowed: {', '.join(sorted(allowed))})")

    def resolved_mode(
        self, key: str, modes: Mapping[str, Any], seen: tuple[str, ...] = ()
    ) -> dict[str, tuple[Any, str]]:
        """The mode's keys, with ``like`` applied, each with the path it was written at."""
        path = f"modes.{key}"
        table = modes[key]
        if not isinstance(table, Mapping):
            raise self.fail(path, "must be a table")
        self.no_unknown(table, _MODE_KEYS, path)
        values: dict[str, tuple[Any, str]] = {}
        like = table.get("like")
        if like is not None:
            if not isinstance(like, str) or like not in modes:
                raise self.fail(f"{path}.like", "must name another mode of this profile")
            if like in seen or like == key:
                raise self.fail(f"{path}.like", "modes refer to each other in a loop")
            values = self.resolved_mode(like, modes, (*seen, key))
            if key == Mode.MOTION.value:
                values.pop("audio", None)  # motion control's sound is the reference's
        for name, value in table.items():
            if name == "like":
                continue
            if name in QUALITIES:
                if not isinstance(value, Mapping):
                    raise self.fail(f"{path}.{name}", "must be a table")
                self.no_unknown(value, _ENGINE_KEYS, f"{path}.{name}")
                inherited = values.get(name, ({}, ""))[0]
                merged = dict(inherited)
                merged.update({k: (v, f"{path}.{name}.{k}") for k, v in value.items()})
                values[name] = (merged, f"{path}.{name}")
            else:
                values[name] = (value, f"{path}.{name}")
        return values

    def mode_spec(self, key: str, modes: Mapping[str, Any]) -> ModeSpec:
        values = self.resolved_mode(key, modes)
        specs: dict[str, EngineSpec] = {}
        rows: dict[str, dict[str, tuple[Any, str]]] = {}
        for quality in QUALITIES:
            own: dict[str, tuple[Any, str]] = values.get(quality, ({}, ""))[0]
            row = {k: v for k, v in values.items() if k in _ENGINE_KEYS}
            row.update(own)
            for required in _REQUIRED:
                if required not in row:
                    raise self.fail(
                        f"modes.{key}.{quality}.{required}",
                        "is required (set it on the mode or on the quality)",
                    )
            rows[quality] = row
        standard, pro = (self.engine_spec(rows[q], rows) for q in QUALITIES)
        specs = {"standard": standard, "pro": pro}
        audio = self.audio(key, values, specs)
        return ModeSpec(standard=specs["standard"], pro=specs["pro"], audio=audio)

    # -- values -------------------------------------------------------------------------------

    def engine_spec(
        self, row: Mapping[str, tuple[Any, str]], rows: Mapping[str, Mapping[str, tuple[Any, str]]]
    ) -> EngineSpec:
        """The spec for one quality row. When both rows share every engine key but sampling,
        the spec carries both sampling rows so the two qualities share one engine."""
        engine = self.engine_fields(row)
        others = [self.engine_fields(other) for other in rows.values()]
        if all(other == engine for other in others):
            table = QualityTable(
                standard=self.sampling(rows["standard"]), pro=self.sampling(rows["pro"])
            )
        else:
            own = self.sampling(row)
            table = QualityTable(standard=own, pro=own)
        return EngineSpec(quality=table, **engine)

    def engine_fields(self, row: Mapping[str, tuple[Any, str]]) -> dict[str, Any]:
        family = self.family(*row["family"])
        checkpoint = self.checkpoint(*row["checkpoint"], family)
        fields: dict[str, Any] = {"family": family, "checkpoint": checkpoint}
        if "dtype" in row:
            fields["gpu_dtype"] = self.dtype(*row["dtype"])
        if "memory" in row:
            fields["memory"] = self.memory(*row["memory"])
        if "speed" in row:
            fields["speed"] = self.speed(*row["speed"])
        if "render_size" in row:
            fields["render_size"] = self.render_size(*row["render_size"])
        if "segment_frames" in row:
            value, path = row["segment_frames"]
            frames = self.positive_int(value, path)
            if frames < 5 or (frames - 1) % 4:
                raise self.fail(path, "must be 4k+1 frames and at least 5 (e.g. 81)")
            fields["segment_frames"] = frames
        return fields

    def sampling(self, row: Mapping[str, tuple[Any, str]]) -> Sampling:
        steps = self.positive_int(*row["steps"])
        guidance_value, guidance_path = row["guidance"]
        if isinstance(guidance_value, bool) or not isinstance(guidance_value, int | float):
            raise self.fail(guidance_path, "must be a number")
        if guidance_value < 1.0:
            raise self.fail(guidance_path, "must be at least 1.0 (1.0 turns guidance off)")
        distilled = False
        if "distilled" in row:
            distilled = self.boolean(*row["distilled"])
        return Sampling(steps=steps, guidance_scale=float(guidance_value), distilled=distilled)

    def audio(
        self, key: str, values: Mapping[str, tuple[Any, str]], specs: Mapping[str, EngineSpec]
    ) -> AudioPolicy:
        families = {spec.family for spec in specs.values()}
        native = families <= NATIVE_AUDIO_FAMILIES
        if "audio" not in values:
            return "native" if native and key != Mode.MOTION.value else "none"
        value, path = values["audio"]
        if key == Mode.MOTION.value:
            raise self.fail(
                path,
                "not used: motion control's sound is the reference video's (keep_original_sound)",
            )
        if value not in AUDIO_POLICIES:
            raise self.fail(path, f"must be one of {', '.join(AUDIO_POLICIES)}")
        if value == "native" and not native:
            raise self.fail(
                path,
                "'native' needs a family that makes sound: "
                + ", ".join(sorted(NATIVE_AUDIO_FAMILIES)),
            )
        policy: AudioPolicy = value
        return policy

    def family(self, value: Any, path: str) -> EngineFamily:
        for family in ENGINE_FAMILIES:
            if value == family:
                return family
        raise self.fail(path, f"must be one of {', '.join(ENGINE_FAMILIES)}")

    def checkpoint(self, value: Any, path: str, family: str) -> Checkpoint:
        if isinstance(value, str):
            if value.startswith(_PATH_PREFIXES):
                return Checkpoint(path=self.local_path(value))
            if not _HUB_ID.match(value):
                raise self.fail(
                    path,
                    "must be a hub id 'owner/name', a folder path starting with / ./ ../ or ~, "
                    "or a table {hub, revision} | {path} | {tiny}",
                )
            return Checkpoint(hub=value)
        if not isinstance(value, Mapping):
            raise self.fail(path, "must be a string or a table")
        self.no_unknown(value, {"hub", "revision", "path", "tiny"}, path)
        kinds = [kind for kind in ("hub", "path", "tiny") if kind in value]
        if len(kinds) != 1:
            raise self.fail(path, "must give exactly one of hub, path, tiny")
        kind = kinds[0]
        raw = value[kind]
        if not isinstance(raw, str) or not raw:
            raise self.fail(f"{path}.{kind}", "must be a non-empty string")
        if "revision" in value and kind != "hub":
            raise self.fail(f"{path}.revision", "goes with hub only")
        if kind == "hub":
            if not _HUB_ID.match(raw):
                raise self.fail(f"{path}.hub", "must be a hub id 'owner/name'")
            revision = value.get("revision")
            if revision is not None and (not isinstance(revision, str) or not revision):
                raise self.fail(f"{path}.revision", "must be a non-empty string")
            return Checkpoint(hub=raw, revision=revision)
        if kind == "path":
            return Checkpoint(path=self.local_path(raw))
        if family not in TINY_FAMILIES:
            raise self.fail(
                f"{path}.tiny",
                f"family {family!r} has no tiny build (only {', '.join(sorted(TINY_FAMILIES))})",
            )
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", raw) or raw.startswith("."):
            raise self.fail(f"{path}.tiny", "must be a plain folder name")
        return Checkpoint(tiny=raw)

    def local_path(self, raw: str) -> Path:
        path = Path(raw).expanduser()
        if not path.is_absolute() and self.source is not None:
            path = self.source.parent / path
        return path

    def dtype(self, value: Any, path: str) -> GpuDtype:
        for dtype in GPU_DTYPES:
            if value == dtype:
                return dtype
        raise self.fail(path, f"must be one of {', '.join(GPU_DTYPES)}")

    def memory(self, value: Any, path: str) -> MemoryMode:
        for memory in MEMORY_MODES:
            if value == memory:
                return memory
        raise self.fail(path, f"must be one of {', '.join(MEMORY_MODES)}")

    def speed(self, value: Any, path: str) -> SpeedOptions:
        """``SpeedOptions`` from a table: each key checked against the field's own type."""
        if not isinstance(value, Mapping):
            raise self.fail(path, "must be a table")
        hints = typing.get_type_hints(SpeedOptions)
        names = {field.name for field in dataclasses.fields(SpeedOptions)}
        self.no_unknown(value, names, path)
        options = {
            key: self.typed(item, hints[key], f"{path}.{key}") for key, item in value.items()
        }
        return SpeedOptions(**options)

    def typed(self, value: Any, hint: Any, path: str) -> Any:
        """``value`` if it fits ``hint`` (bool, int, float, str, Literal, X | None)."""
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if origin in (typing.Union, types.UnionType):
            options = [arg for arg in args if arg is not type(None)]
            # TOML has no null: an optional option is switched off by leaving it out.
            return self.typed(value, options[0] if len(options) == 1 else hint, path)
        if origin is typing.Literal:
            if value not in args:
                raise self.fail(path, f"must be one of {', '.join(map(str, args))}")
            return value
        if hint is bool:
            return self.boolean(value, path)
        if hint is int:
            return self.positive_int(value, path)
        if hint is float:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise self.fail(path, "must be a number")
            return float(value)
        if hint is str:
            if not isinstance(value, str) or not value:
                raise self.fail(path, "must be a non-empty string")
            return value
        raise self.fail(path, "cannot be set from a profile file")

    def render_size(self, value: Any, path: str) -> RenderSize:
        if not isinstance(value, Mapping):
            raise self.fail(path, "must be a table")
        self.no_unknown(value, {"long_side", "frames"}, path)
        long_side = frames = None
        if "long_side" in value:
            long_side = self.positive_int(value["long_side"], f"{path}.long_side")
        if "frames" in value:
            frames = self.positive_int(value["frames"], f"{path}.frames")
        return RenderSize(long_side=long_side, frames=frames)

    def positive_int(self, value: Any, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise self.fail(path, "must be a positive integer")
        return value

    def boolean(self, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(path, "must be true or false")
        return value
