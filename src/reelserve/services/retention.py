"""The retention job: files of finished tasks older than their age are deleted, and the
task is marked so its record says the file expired.

Safe with many replicas running it at once: deleting a blob is idempotent and the mark is
conditional, so two replicas on the same task both delete (harmlessly) and one marks. The
files go first and the mark after, so a crash in between only means deleting again later;
a file is never left behind by a mark that came first.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from reelserve.core.ports import Blobs, Store
from reelserve.core.retention import FileKind, stored_keys

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetentionPolicy:
    output_age_s: float  # 0: keep forever
    upload_age_s: float  # 0: keep forever
    batch: int = 100

    def age(self, kind: FileKind) -> float:
        return self.output_age_s if kind is FileKind.OUTPUTS else self.upload_age_s

    @property
    def keeps_everything(self) -> bool:
        return self.output_age_s <= 0 and self.upload_age_s <= 0


@dataclass(frozen=True)
class RetentionReport:
    outputs: int = 0  # tasks whose outputs were deleted by this run
    uploads: int = 0
    failed: int = 0  # tasks left for the next run (a delete failed)


def _expire_kind(
    store: Store, blobs: Blobs, kind: FileKind, age_s: float, batch: int
) -> tuple[int, int]:
    expired = failed = 0
    while True:
        due = store.expirable(kind, age_s, batch)
        progress = 0
        for gen in due:
            try:
                for key in stored_keys(gen, kind):
                    blobs.delete(key)
            except Exception:
                # The store is down or refuses: leave the mark off and try next run.
                log.exception("retention: could not delete %s of %s", kind.value, gen.id)
                failed += 1
                continue
            progress += 1
            if store.mark_expired(gen.id, kind):
                expired += 1
        # A short batch was the last; a batch of nothing but failures would come back.
        if len(due) < batch or progress == 0:
            return expired, failed


def expire_once(store: Store, blobs: Blobs, policy: RetentionPolicy) -> RetentionReport:
    counts = {kind: (0, 0) for kind in FileKind}
    for kind in FileKind:
        if policy.age(kind) > 0:
            counts[kind] = _expire_kind(store, blobs, kind, policy.age(kind), policy.batch)
    report = RetentionReport(
        outputs=counts[FileKind.OUTPUTS][0],
        uploads=counts[FileKind.UPLOADS][0],
        failed=counts[FileKind.OUTPUTS][1] + counts[FileKind.UPLOADS][1],
    )
    if report.outputs or report.uploads or report.failed:
        log.info(
            "retention: expired outputs of %d tasks, uploads of %d (%d left for later)",
            report.outputs,
            report.uploads,
            report.failed,
        )
    return report


def run_retention(
    store: Store,
    blobs: Blobs,
    policy: RetentionPolicy,
    interval_s: float,
    stop: threading.Event,
) -> None:
    while not stop.wait(interval_s):
        try:
            expire_once(store, blobs, policy)
        except Exception:
            # A database hiccup must not end retention; the next tick tries again.
            log.exception("retention tick failed")
