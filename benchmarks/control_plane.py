"""The control plane's own cost: submit, claim, coordination, SSE fan-out, claim vs queue length.

Every job runs the ``fake`` engine (a fixed sleep per step, then the real MP4 writer), so
what is measured is reelserve around the model, not the model. Two topologies, in one run:

- ``sqlite``: one ``reelserve serve`` process (API + worker + reaper) on SQLite;
- ``postgres``: two ``reelserve serve --no-worker`` replicas on one PostgreSQL database
  (LISTEN/NOTIFY wake-ups) and four ``reelserve worker --api-url`` processes that reach
  them over the internal routes.

For each it prints submit latency p50/p99 and throughput at a fixed offered load,
claim-to-start latency p50/p99 (queued → started, both stamps from the database clock),
and the coordination time around a job as a share of a 60 s job. For PostgreSQL it also
holds 1,000 concurrent SSE streams on one replica (CPU seconds it used), and times claims
with 10, 10,000 and 100,000 tasks queued.

    python benchmarks/control_plane.py [--rate 200] [--seconds 5] [--streams 1000]

Needs PostgreSQL (REELSERVE_TEST_POSTGRES_URL, default 127.0.0.1:5432/test); it works in
schemas of its own and drops them afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
import sqlalchemy as sa

POSTGRES_URL = os.environ.get(
    "REELSERVE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
MODEL = "kling-ai/kling-v2.6"
KEY_LINE = re.compile(r"API key \(shown once\): (\S+)")
FAKE_STEPS = 4
# Long enough that workers mostly sleep during the load phase (the model's time, not ours).
FAKE_STEP_S = 0.5
LONG_JOB_S = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def stamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def postgres_schema() -> Iterator[str]:
    """A URL whose connections live in a fresh schema, dropped afterwards."""
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@dataclass
class Topology:
    """Server processes of one deployment, started with the ``reelserve`` entry point."""

    name: str
    root: Path
    env: dict[str, str]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    bases: list[str] = field(default_factory=list)
    pids: list[int] = field(default_factory=list)
    key: str = ""

    def spawn(self, *args: str) -> subprocess.Popen[bytes]:
        log = (self.root / f"{args[0]}-{len(self.processes)}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "reelserve", *args],
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append(process)
        return process

    def start_api(self, *extra: str) -> None:
        port = free_port()
        process = self.spawn("serve", "--port", str(port), *extra)
        base = f"http://127.0.0.1:{port}/api/v1"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert process.poll() is None, f"serve exited; see {self.root}"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            time.sleep(0.2)
        else:
            raise RuntimeError(f"serve never became ready; see {self.root}")
        self.bases.append(base)
        self.pids.append(process.pid)
        log = (self.root / f"serve-{len(self.processes) - 1}.log").read_text(errors="replace")
        found = KEY_LINE.search(log)
        if found:
            self.key = found.group(1)

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "reelserve", *args],
            env={**os.environ, **self.env},
            check=True,
            capture_output=True,
            text=True,
        )
        return done.stdout

    def wait_for_workers(self, count: int) -> None:
        """Until ``count`` workers have announced themselves in their logs."""
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            logs = [p.read_text(errors="replace") for p in self.root.glob("worker-*.log")]
            if sum("serving" in text for text in logs) >= count:
                return
            time.sleep(0.2)
        raise RuntimeError(f"workers did not start; see {self.root}")

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def base_env(root: Path, database_url: str | None) -> dict[str, str]:
    env = {
        "REELSERVE_DATA_DIR": str(root / "data"),
        "REELSERVE_PROFILE": "fake",
        "REELSERVE_FAKE_STEPS": str(FAKE_STEPS),
        "REELSERVE_FAKE_STEP_S": str(FAKE_STEP_S),
        "REELSERVE_CREATES_PER_MINUTE": "0",
        "REELSERVE_MAX_ACTIVE_PER_KEY": "0",
        "REELSERVE_INITIAL_CREDITS": str(10**9),
        "REELSERVE_WORKER_POLL_S": "5",  # wake-ups do the work; the poll is the safety net
    }
    if database_url:
        env["REELSERVE_DATABASE_URL"] = database_url
    return env


@contextlib.contextmanager
def sqlite_topology(root: Path) -> Iterator[Topology]:
    topo = Topology("sqlite, 1 process", root, base_env(root, None))
    try:
        topo.start_api()
        yield topo
    finally:
        topo.stop()


@contextlib.contextmanager
def postgres_topology(root: Path, replicas: int = 2, workers: int = 4) -> Iterator[Topology]:
    with postgres_schema() as url:
        topo = Topology(f"postgres, {replicas} API + {workers} workers", root, base_env(root, url))
        try:
            topo.cli("db", "upgrade")
            token = topo.cli("workers", "token", "create", "--name", "bench").strip()
            for _ in range(replicas):
                topo.start_api("--no-worker")
            # Workers speak to the replicas' internal routes, not to the database.
            for index in range(workers):
                api = topo.bases[index % replicas].removesuffix("/api/v1")
                topo.spawn("worker", "--api-url", api, "--worker-token", token)
            topo.wait_for_workers(workers)
            yield topo
        finally:
            topo.stop()


# -- measurements ----------------------------------------------------------------------------


async def offered_load(topo: Topology, rate: float, seconds: float) -> dict[str, float]:
    """Open-loop creates at ``rate`` per second, round-robin over the replicas."""
    total = int(rate * seconds)
    latencies: list[float] = []
    failures = 0
    limits = httpx.Limits(max_connections=400, max_keepalive_connections=400)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def one(index: int, at: float) -> None:
            nonlocal failures
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            start = time.perf_counter()
            base = topo.bases[index % len(topo.bases)]
            try:
                response = await client.post(
                    f"{base}/generation/{MODEL}",
                    json={"prompt": f"bench {index}", "generate_audio": False},
                    headers=topo.headers,
                )
            except httpx.HTTPError:
                failures += 1
                return
            if response.status_code == 200:
                latencies.append(time.perf_counter() - start)
            else:
                failures += 1

        t0 = time.perf_counter() + 0.2
        began = time.perf_counter()
        await asyncio.gather(*(one(i, t0 + i / rate) for i in range(total)))
        elapsed = time.perf_counter() - began
    return {
        "p50_ms": pct(latencies, 50) * 1000,
        "p99_ms": pct(latencies, 99) * 1000,
        "throughput": len(latencies) / elapsed,
        "failures": failures,
    }


def cancel_all(topo: Topology, timeout: float = 300) -> None:
    """Cancel every task of ours still queued or running, and wait until none is left."""
    deadline = time.monotonic() + timeout
    with httpx.Client(headers=topo.headers, timeout=30) as client:
        while time.monotonic() < deadline:
            running = client.get(f"{topo.bases[0]}/generations/running?limit=100").json()
            if not running:
                return
            for item in running:
                client.post(f"{topo.bases[0]}/generation/{item['id']}/cancel")
            time.sleep(0.2)
    raise RuntimeError("tasks were still running after the cancel")


def sequential_jobs(topo: Topology, count: int) -> dict[str, float]:
    """One task at a time on idle workers: claim-to-start and time around the job."""
    claim: list[float] = []
    around: list[float] = []
    for index in range(count):
        base = topo.bases[index % len(topo.bases)]
        record = httpx.post(
            f"{base}/generation/{MODEL}",
            json={"prompt": f"seq {index}", "generate_audio": False},
            headers=topo.headers,
            timeout=30,
        ).json()
        while record["status"] not in ("COMPLETED", "FAILED", "CANCELED"):
            time.sleep(0.05)
            record = httpx.get(
                f"{base}/generation/{record['id']}", headers=topo.headers, timeout=30
            ).json()
        assert record["status"] == "COMPLETED", record
        created, started = stamp(record["created_at"]), stamp(record["started_at"])
        completed = stamp(record["completed_at"])
        claim.append(started - created)
        around.append(completed - created)
    return {
        "claim_p50_ms": pct(claim, 50) * 1000,
        "claim_p99_ms": pct(claim, 99) * 1000,
        "total_p50_s": statistics.median(around),
    }


def encode_seconds() -> float:
    """What the MP4 writer alone takes for the fake engine's output (work, not coordination)."""
    from reelserve.core.render import Mode, RenderJob
    from reelserve.engines.fake import FakeEngine
    from reelserve.media import write_mp4

    job = RenderJob(
        mode=Mode.TEXT,
        prompt="x",
        negative_prompt=None,
        width=1280,
        height=720,
        num_frames=121,
        fps=24,
        generate_audio=False,
        seed=1,
        quality="standard",
    )
    rendition = FakeEngine(steps=1, seconds_per_step=0).render(job, lambda _: None)
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(3):
            start = time.perf_counter()
            write_mp4(
                Path(folder) / "x.mp4",
                rendition.frames,
                None,
                None,
                width=1280,
                height=720,
                num_frames=121,
                fps=24,
            )
            runs.append(time.perf_counter() - start)
    return statistics.median(runs)


async def sse_fanout(topo: Topology, streams: int, hold_s: float) -> dict[str, float]:
    """``streams`` event streams on the first replica while tasks progress."""
    base = topo.bases[0]
    pid = topo.pids[0]
    tasks = []
    async with httpx.AsyncClient(timeout=30) as client:
        for index in range(10):
            response = await client.post(
                f"{base}/generation/{MODEL}",
                json={"prompt": f"sse {index}", "generate_audio": False},
                headers=topo.headers,
            )
            tasks.append(response.json()["id"])
    opened = 0
    events = 0
    ended = 0
    stop = asyncio.Event()
    all_open = asyncio.Event()
    limits = httpx.Limits(max_connections=streams + 10, max_keepalive_connections=streams + 10)

    async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(60, read=None)) as client:

        async def follow(gen_id: str) -> None:
            nonlocal opened, events, ended
            url = f"{base}/generation/{gen_id}/events"
            async with client.stream("GET", url, headers=topo.headers) as response:
                opened += 1
                if opened == streams:
                    all_open.set()
                async for line in response.aiter_lines():
                    if line.startswith("data:"):
                        events += 1
                    if stop.is_set():
                        return
            ended += 1

        began = time.perf_counter()
        runners = [asyncio.create_task(follow(tasks[i % len(tasks)])) for i in range(streams)]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_open.wait(), 60)
        open_s = time.perf_counter() - began
        cpu_before = cpu_seconds(pid)
        await asyncio.sleep(hold_s)
        cpu_used = cpu_seconds(pid) - cpu_before
        stop.set()
        for runner in runners:
            runner.cancel()
        await asyncio.gather(*runners, return_exceptions=True)
    return {
        "opened": opened,
        "open_s": open_s,
        "events": events,
        "cpu_s": cpu_used,
        "hold_s": hold_s,
    }


def claim_cost(queue_lengths: list[int], claims: int = 50) -> dict[int, tuple[float, float]]:
    """p50/p99 ms of one claim on PostgreSQL with ``n`` tasks queued."""
    from reelserve.core.ids import new_generation_id
    from reelserve.core.ports import NewGeneration
    from reelserve.store import SqlStore, connect, upgrade

    results: dict[int, tuple[float, float]] = {}
    for queued in queue_lengths:
        with postgres_schema() as url:
            engine = connect(url)
            upgrade(engine)
            store = SqlStore(engine)
            workspace = store.ensure_workspace("bench")
            from reelserve.core.ledger import Bucket

            store.grant(workspace.id, Bucket.PERMANENT, 10**9)
            template, _ = store.submit(
                NewGeneration(
                    id=new_generation_id(),
                    workspace_id=workspace.id,
                    model=MODEL,
                    mode="text-to-video",
                    input={"prompt": "x"},
                    plan={},
                    price=1,
                    max_attempts=3,
                    deadline_s=3600,
                ),
                None,
            )
            # The rest are copies of one real row, inserted in bulk (submitting 100,000 tasks
            # one by one would time the submit path, not the claim).
            with engine.begin() as conn:
                columns = [
                    c[0]
                    for c in conn.execute(
                        sa.text(
                            "SELECT column_name FROM information_schema.columns "
                            "WHERE table_name = 'generations' AND table_schema = current_schema()"
                        )
                    )
                ]
                others = [c for c in columns if c != "id"]
                conn.execute(
                    sa.text(
                        f"INSERT INTO generations (id, {', '.join(others)}) "
                        f"SELECT id || '_' || lpad(n::text, 6, '0'), {', '.join(others)} "
                        "FROM generations, generate_series(1, :n) AS n WHERE id = :id"
                    ),
                    {"n": queued - 1, "id": template.id},
                )
                conn.execute(sa.text("ANALYZE generations"))
            timings = []
            for index in range(min(claims, queued)):
                start = time.perf_counter()
                claimed = store.claim(f"wrk_bench{index}", [MODEL], 60)
                timings.append(time.perf_counter() - start)
                assert claimed is not None
            results[queued] = (pct(timings, 50) * 1000, pct(timings, 99) * 1000)
            engine.dispose()
    return results


# -- report ----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200.0, help="offered creates per second")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the load phase")
    parser.add_argument("--sequential", type=int, default=10, help="one-at-a-time tasks")
    parser.add_argument("--streams", type=int, default=1000, help="concurrent SSE streams")
    parser.add_argument("--hold", type=float, default=10.0, help="seconds to hold the streams")
    parser.add_argument(
        "--queue-lengths", default="10,10000,100000", help="queued tasks for the claim cost"
    )
    args = parser.parse_args()

    job_s = FAKE_STEPS * FAKE_STEP_S
    encode_s = encode_seconds()
    rows: list[tuple[str, dict[str, float], dict[str, float]]] = []
    sse: dict[str, float] = {}
    for make in (sqlite_topology, postgres_topology):
        with (
            tempfile.TemporaryDirectory(prefix="reelserve-bench-") as folder,
            make(Path(folder)) as topo,
        ):
            print(f"[{topo.name}] sequential jobs ...", file=sys.stderr)
            seq = sequential_jobs(topo, args.sequential)
            print(
                f"[{topo.name}] {args.rate:.0f} creates/s for {args.seconds:.0f} s ...",
                file=sys.stderr,
            )
            load = asyncio.run(offered_load(topo, args.rate, args.seconds))
            if make is postgres_topology:
                print(
                    f"[{topo.name}] canceling the backlog, then {args.streams} SSE streams ...",
                    file=sys.stderr,
                )
                cancel_all(topo)
                sse = asyncio.run(sse_fanout(topo, args.streams, args.hold))
            rows.append((topo.name, load, seq))
    print("claim cost ...", file=sys.stderr)
    lengths = [int(n) for n in args.queue_lengths.split(",")]
    claims = claim_cost(lengths)

    print(
        f"\nfake job: {FAKE_STEPS} x {FAKE_STEP_S * 1000:.0f} ms steps = {job_s:.2f} s, "
        f"then the MP4 writer ({encode_s:.2f} s for 121 frames of 1280x720)\n"
    )
    header = (
        f"{'topology':<34} {'submit p50':>11} {'submit p99':>11} {'creates/s':>10} "
        f"{'errors':>6} {'claim p50':>10} {'claim p99':>10} {'around job':>11} {'of 60 s':>8}"
    )
    print(header)
    print("-" * len(header))
    for name, load, seq in rows:
        around = seq["total_p50_s"] - job_s - encode_s
        print(
            f"{name:<34} {load['p50_ms']:>9.1f}ms {load['p99_ms']:>9.1f}ms "
            f"{load['throughput']:>10.1f} {load['failures']:>6.0f} "
            f"{seq['claim_p50_ms']:>8.1f}ms {seq['claim_p99_ms']:>8.1f}ms "
            f"{around * 1000:>9.0f}ms {around / LONG_JOB_S:>8.2%}"
        )
    print(
        f"\noffered load {args.rate:.0f} creates/s for {args.seconds:.0f} s; 'around job' = "
        "created → completed minus the fake job and the measured MP4 write (queue wait, "
        "claim, heartbeats, upload, finish)."
    )
    if sse:
        print(
            f"\nSSE on one PostgreSQL replica: {sse['opened']:.0f} streams open in "
            f"{sse['open_s']:.2f} s; over {sse['hold_s']:.0f} s the replica used "
            f"{sse['cpu_s']:.2f} CPU s ({sse['cpu_s'] / sse['hold_s']:.0%} of a core) and "
            f"delivered {sse['events']:.0f} events."
        )
    print("\nclaim on PostgreSQL vs queue length:")
    base_p50 = claims[lengths[0]][0]
    for queued, (p50, p99) in claims.items():
        print(
            f"  {queued:>7} queued: p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  "
            f"({p50 / base_p50:.2f}x the {lengths[0]}-task p50)"
        )


if __name__ == "__main__":
    main()
