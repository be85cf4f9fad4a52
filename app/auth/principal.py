"""Who is calling and what their token allows: scopes and queue name patterns."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass

SUBMIT = "tasks:submit"
READ = "tasks:read"
WORK = "tasks:work"
QUEUES_ADMIN = "queues:admin"
METRICS = "metrics"
ADMIN = "admin"
SCOPES = (SUBMIT, READ, WORK, QUEUES_ADMIN, METRICS, ADMIN)


@dataclass(frozen=True, slots=True)
class Principal:
    """A verified caller. `queue_patterns` None: every queue; else fnmatch-style patterns."""

    subject: str
    scopes: frozenset[str]
    queue_patterns: tuple[str, ...] | None = None

    def has_scopes(self, required: Iterable[str]) -> bool:
        """Whether the token carries every required scope (`admin` carries all)."""
        return ADMIN in self.scopes or all(scope in self.scopes for scope in required)

    @property
    def restricted(self) -> bool:
        """Whether the token is limited to some queues."""
        return self.queue_patterns is not None

    def allows_queue(self, queue: str) -> bool:
        """Whether the token may act on `queue` (`reports.*` matches `reports.daily`)."""
        if self.queue_patterns is None:
            return True
        return any(fnmatch.fnmatchcase(queue, pattern) for pattern in self.queue_patterns)


# When authentication is off (a trusted local setup), every request acts as this.
UNAUTHENTICATED_ADMIN = Principal(subject="anonymous", scopes=frozenset({ADMIN}))
