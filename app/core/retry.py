"""Retry backoff: exponential with a cap and optional full jitter."""

from __future__ import annotations

import random

from app.core.models import RetryPolicy


def backoff_ms(policy: RetryPolicy, failed_attempts: int, rng: random.Random) -> int:
    """Delay before the next attempt after `failed_attempts` failures (≥ 1).

    Full jitter (as in the AWS architecture blog's "Exponential Backoff and Jitter"):
    a uniform draw in [0, capped exponential].
    """
    exponent = max(failed_attempts - 1, 0)
    # Cap the exponent so the float never overflows for large attempt counts.
    raw = policy.initial_delay_seconds * (policy.factor ** min(exponent, 64))
    ceiling = min(policy.max_delay_seconds, raw)
    seconds = rng.uniform(0, ceiling) if policy.jitter else ceiling
    return round(seconds * 1000)
