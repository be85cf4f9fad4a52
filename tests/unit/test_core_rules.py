"""Pure core rules with a fixed clock and seeded randomness: no I/O."""

from __future__ import annotations

import random

import pytest

from app.core.clock import FixedClock, format_ms, parse_rfc3339_ms
from app.core.lifecycle import TRANSITIONS, can_transition, decide_failure
from app.core.models import (
    TERMINAL_STATES,
    QueueConfig,
    QueueOverrides,
    RetryPolicy,
    TaskState,
)
from app.core.retry import backoff_ms

POLICY = RetryPolicy(initial_delay_seconds=1, factor=2, max_delay_seconds=10, jitter=False)


@pytest.mark.parametrize(
    ("failures", "expected_ms"),
    [(1, 1000), (2, 2000), (3, 4000), (4, 8000), (5, 10000), (500, 10000)],
)
def test_backoff_grows_exponentially_up_to_the_cap(failures: int, expected_ms: int) -> None:
    assert backoff_ms(POLICY, failures, random.Random(0)) == expected_ms


def test_full_jitter_stays_within_zero_and_the_capped_delay() -> None:
    jittered = RetryPolicy(initial_delay_seconds=1, factor=2, max_delay_seconds=10, jitter=True)
    rng = random.Random(42)
    draws = [backoff_ms(jittered, 3, rng) for _ in range(200)]
    assert all(0 <= d <= 4000 for d in draws)
    assert len(set(draws)) > 100


def decide(**overrides: object) -> object:
    arguments: dict[str, object] = {
        "attempts": 1,
        "max_attempts": 3,
        "retry_requested": True,
        "retry_after_ms": None,
        "cancel_requested": False,
        "policy": POLICY,
        "now_ms": 5_000,
        "rng": random.Random(0),
    }
    arguments.update(overrides)
    return decide_failure(**arguments)  # type: ignore[arg-type]


def test_failure_with_attempts_left_is_retried_after_backoff() -> None:
    outcome = decide(attempts=2)
    assert outcome.state is TaskState.queued and outcome.run_at_ms == 7_000  # type: ignore[attr-defined]


def test_failure_honours_retry_after() -> None:
    assert decide(retry_after_ms=123).run_at_ms == 5_123  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("overrides", "state"),
    [
        ({"attempts": 3}, TaskState.dead),
        ({"retry_requested": False}, TaskState.dead),
        ({"cancel_requested": True}, TaskState.cancelled),
    ],
)
def test_failure_goes_dead_or_cancelled(overrides: dict[str, object], state: TaskState) -> None:
    assert decide(**overrides).state is state  # type: ignore[attr-defined]


def test_terminal_states_have_no_way_out_but_redrive() -> None:
    for source, target in TRANSITIONS:
        if source in TERMINAL_STATES:
            assert (source, target) == (TaskState.dead, TaskState.queued)
    assert can_transition(TaskState.queued, TaskState.running)
    assert not can_transition(TaskState.succeeded, TaskState.queued)


def test_queue_overrides_apply_over_defaults() -> None:
    defaults = QueueConfig(max_attempts=5, retry=POLICY, lease_seconds=60, retention_seconds=100)
    effective = QueueOverrides(lease_seconds=5, retention_seconds=0).apply_to(defaults)
    assert effective == QueueConfig(5, POLICY, 5, 0)


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("1970-01-01T00:00:00Z", 0),
        ("2026-12-04T21:00:00.250+01:00", 1_796_414_400_250),
        ("0394-01-18T01:25:26.577Z", -49_732_266_873_423),
    ],
)
def test_timestamps_round_trip(text: str, ms: int) -> None:
    assert parse_rfc3339_ms(text) == ms
    assert parse_rfc3339_ms(format_ms(ms)) == ms
    assert len(format_ms(ms)) == 24


def test_timestamps_need_an_offset() -> None:
    with pytest.raises(ValueError, match="offset"):
        parse_rfc3339_ms("2026-12-04T21:00:00")


def test_fixed_clock_moves_only_when_told() -> None:
    clock = FixedClock(1_000)
    assert clock.now_ms() == 1_000
    clock.advance(1.5)
    assert clock.now_ms() == 2_500
