"""Settings: one frozen object built by the composition roots (CLI, tests), never global.

Every field can come from a ``REELSERVE_<NAME>`` environment variable; CLI flags win.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from reelserve.core.pricing import DEFAULT_PER_SECOND, PriceTable

ENV_PREFIX = "REELSERVE_"


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("reelserve-data")
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    # Public base URL of the API (e.g. https://video.example.com); file links are built
    # from the request's own URL when unset.
    public_url: str | None = None
    profile: str = "tiny"
    # Where model checkpoints live (default <data_dir>/models); share it between data dirs.
    models_path: Path | None = None
    # The "fake" profile (control-plane tests and benchmarks): steps and seconds per step.
    fake_steps: int = 4
    fake_step_s: float = 0.05
    # Where the worker runs its engines: "child" (a spawned engine process), "inline" (the
    # worker's own process) or "auto" (inline for the tiny and fake profiles, else child).
    engine_process: str = "auto"
    # Engine process: seconds a canceled job has to stop before the process is replaced, and
    # the free share of GPU memory below which idle engines are released before another loads.
    cancel_grace_s: float = 10.0
    engine_min_free_fraction: float = 0.5
    file_url_ttl_s: float = 7 * 24 * 3600
    lease_s: float = 30.0
    max_attempts: int = 3
    retry_backoff_s: float = 5.0
    deadline_s: float = 3 * 3600.0
    reaper_interval_s: float = 2.0
    worker_poll_s: float = 1.0
    worker_fresh_s: float = 90.0
    idempotency_ttl_s: float = 24 * 3600.0
    # Per API key (0 turns a limit off): creates per minute, tasks queued or running.
    creates_per_minute: int = 120
    max_active_per_key: int = 32
    # Fair sharing: tasks of one workspace running at once, unless the workspace has its
    # own cap (`reelserve workspaces set`); 0: no cap.
    max_running_per_workspace: int = 0
    # UNSAFE in production: lets input URLs and webhook receivers be loopback or private
    # addresses (tests, or a deployment that must reach its own network).
    allow_private_urls: bool = False
    fetch_timeout_s: float = 60.0
    # Webhooks: seconds per attempt, first retry delay (doubling, with jitter, up to an
    # hour), when to give up after the event, and how often deliverers look for due ones.
    webhook_timeout_s: float = 10.0
    webhook_retry_s: float = 10.0
    webhook_give_up_s: float = 24 * 3600.0
    webhook_poll_s: float = 1.0
    initial_credits: int = 1000
    price_per_second: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PER_SECOND))
    secret: str | None = None
    # A remote worker (`reelserve worker --api-url`): the API it works for, and its token.
    api_url: str | None = None
    worker_token: str | None = field(default=None, repr=False)
    # Blob store: None keeps files in <data_dir>/files; s3://bucket/prefix uses S3 or an
    # S3-compatible store. Unset s3_* fields fall back to boto3's AWS_* variables.
    blob_url: str | None = None
    s3_endpoint_url: str | None = None
    # Endpoint in the presigned links handed to clients, when it differs from the above.
    s3_public_url: str | None = None
    s3_region: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    s3_addressing_style: str = "auto"  # "path" for most S3-compatible stores
    # Retention: files of finished tasks are deleted this long after the task ended
    # (0 keeps them forever); checked every retention_interval_s.
    output_retention_s: float = 30 * 24 * 3600.0
    upload_retention_s: float = 30 * 24 * 3600.0
    retention_interval_s: float = 600.0
    # Server logs: "text" lines, or "json" (one object per line, with request_id and
    # generation_id) for log shippers.
    log_format: str = "text"

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'reelserve.db').resolve()}"

    @property
    def blobs_dir(self) -> Path:
        return self.data_dir / "files"

    @property
    def models_dir(self) -> Path:
        return self.models_path or self.data_dir / "models"

    @property
    def price_table(self) -> PriceTable:
        return PriceTable(self.price_per_second)

    def signing_secret(self) -> bytes:
        """The HMAC secret for file URLs: configured, or made once and kept in data_dir.

        Every process sharing a data directory (or configured alike) signs the same way.
        """
        if self.secret:
            return self.secret.encode()
        path = self.data_dir / "secret"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(secrets.token_hex(32))
            tmp.chmod(0o600)
            try:
                os.link(tmp, path)  # atomic: the first process to create it wins
            except FileExistsError:
                pass
            finally:
                tmp.unlink(missing_ok=True)
        return path.read_text().strip().encode()

    def with_overrides(self, **overrides: Any) -> Settings:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def _coerce(kind: Any, raw: str) -> Any:
    text = str(kind)
    if "bool" in text:
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if "int" in text and "dict" not in text:
        return int(raw)
    if "float" in text:
        return float(raw)
    if "Path" in text:  # also "Path | None"
        return Path(raw)
    if "dict" in text:
        return json.loads(raw)
    return raw


def from_env(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in fields(Settings):
        raw = env.get(ENV_PREFIX + f.name.upper())
        if raw is not None:
            values[f.name] = _coerce(f.type, raw)
    return Settings(**values).with_overrides(**overrides)
