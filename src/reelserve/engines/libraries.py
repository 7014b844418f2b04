"""Handles on diffusers and transformers, typed as ``Any``, imported on first use.

Both libraries ship partial type information (untyped constructors, classes assembled by lazy
modules and mixins), so strictly checking calls into them reports their gaps, not ours. The
engines reach them through these handles and keep their own code fully typed. Importing
through a function also keeps the multi-second import out of ``import reelserve.engines``.
"""

from __future__ import annotations

import importlib
from typing import Any


def diffusers(submodule: str = "") -> Any:
    """``diffusers`` or one of its submodules, e.g. ``diffusers("pipelines.ltx2.vocoder")``."""
    return importlib.import_module(f"diffusers.{submodule}" if submodule else "diffusers")


def transformers() -> Any:
    return importlib.import_module("transformers")
