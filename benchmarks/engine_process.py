"""What running the engines in a spawned engine process costs, against running them inline.

Prints, on this machine:

- start-up: the engine process spawned until it says ready (a fresh interpreter importing
  torch and opening the engines) and its first render (pipelines load lazily), against
  opening the same engines inline and their first render;
- per job: the median render of the tiny LTX-2 text-to-video job and of the fake engine
  (no model: pure messaging cost) through the engine process and inline;
- output hand-over: a 5 s 720p clip's frames (121x720x1280x3 uint8, 335 MB) from a spawned
  process to this one, pickled through the pipe against an ``.npy`` file memory-mapped here
  (both read in full once on arrival, as the MP4 writer does).

    python benchmarks/engine_process.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from reelserve.core.render import Engine, Mode, RenderJob
from reelserve.worker.messages import ArrayFile, EngineFactory
from reelserve.worker.supervisor import EngineProcessConfig, EngineSupervisor

CLIP_SHAPE = (121, 720, 1280, 3)
JOB = RenderJob(
    mode=Mode.TEXT,
    prompt="a cat walking through neon rain",
    negative_prompt=None,
    width=1280,
    height=720,
    num_frames=121,
    fps=24,
    generate_audio=True,
    seed=1,
    quality="standard",
)


def _timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _median_render(engine: Engine, repeat: int) -> float:
    return statistics.median(
        _timed(lambda: engine.render(JOB, lambda _: None)) for _ in range(repeat)
    )


def _send_frames(conn: Connection, how: str, folder: str) -> None:
    frames = np.random.default_rng(0).integers(0, 256, CLIP_SHAPE, dtype=np.uint8)
    conn.recv()  # go
    if how == "pipe":
        conn.send(frames)
    else:
        path = Path(folder) / "frames.npy"
        np.save(path, frames, allow_pickle=False)
        conn.send(ArrayFile(str(path)))
    conn.recv()


def hand_over(how: str, folder: str) -> float:
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(target=_send_frames, args=(theirs, how, folder))
    process.start()
    started = time.perf_counter()
    ours.send("go")
    message = ours.recv()
    frames = message.load() if isinstance(message, ArrayFile) else message
    np.asarray(frames).sum(dtype=np.uint64)  # read every frame, as the MP4 writer does
    elapsed = time.perf_counter() - started
    ours.send("done")
    process.join()
    return elapsed


def _inline_open_in_a_fresh_process(models: Path) -> float:
    """Seconds to import and open the engines in a new interpreter, as ``serve`` does inline."""
    code = (
        "import time; t = time.perf_counter(); from pathlib import Path; "
        "from reelserve.engines import open_engines; "
        f"open_engines('tiny', Path({str(models)!r})); print(time.perf_counter() - t)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return float(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="engine-process-") as scratch:
        root = Path(scratch)
        models = root / "models"
        # Build the tiny checkpoints first so neither side pays for it.
        from reelserve.engines import open_engines

        open_engines("tiny", models)

        config = EngineProcessConfig(scratch_dir=root / "jobs")
        child = EngineSupervisor(
            EngineFactory(
                "reelserve.engines:open_engines", {"profile_name": "tiny", "models_dir": models}
            ),
            config,
        )
        spawn_ready = _timed(child.start)
        child_text = child.engines()[Mode.TEXT]
        child_first = _timed(lambda: child_text.render(JOB, lambda _: None))
        child_job = _median_render(child_text, args.repeat)
        child.close()

        inline_open = _inline_open_in_a_fresh_process(models)
        inline_text = open_engines("tiny", models)[Mode.TEXT]
        inline_first = _timed(lambda: inline_text.render(JOB, lambda _: None))
        inline_job = _median_render(inline_text, args.repeat)

        fake = EngineSupervisor(EngineFactory("reelserve.engines.fake:fake_engines"), config)
        fake_ready = _timed(fake.start)
        fake_child = _median_render(fake.engines()[Mode.TEXT], args.repeat * 4)
        fake.close()
        from reelserve.engines.fake import FakeEngine

        fake_inline = _median_render(FakeEngine(), args.repeat * 4)

        pipe = statistics.median(hand_over("pipe", scratch) for _ in range(3))
        file = statistics.median(hand_over("file", scratch) for _ in range(3))

    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print("start-up (s)                       engine process   inline")
    print(f"  tiny profile: start → ready       {spawn_ready:10.2f}   {inline_open:8.2f}")
    print(f"  tiny LTX-2: first render (loads)  {child_first:10.2f}   {inline_first:8.2f}")
    print(f"  fake engine: open → ready         {fake_ready:10.2f}   {0.0:8.2f}")
    print("per job, median (s)")
    print(f"  tiny LTX-2 text-to-video          {child_job:10.3f}   {inline_job:8.3f}")
    print(f"  fake engine (messaging only)      {fake_child:10.4f}   {fake_inline:8.4f}")
    print(f"5 s 720p frames {np.prod(CLIP_SHAPE) / 1e6:.0f} MB, spawned process → here (s)")
    print(f"  pickled through the pipe          {pipe:10.2f}")
    print(f"  .npy file, memory-mapped          {file:10.2f}")


if __name__ == "__main__":
    main()
