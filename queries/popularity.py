"""Reading popularity: windows and time decay applied to the projection's day buckets.

A window of N days sums the last N daily buckets, each weighted by 0.5 ** (age_days / half_life),
so yesterday counts a bit less than today. `all` is the undecayed all-time total. The projection
stays a pure function of the log; only this read depends on the clock (or on `at`, for replays of
the past and for tests).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from projections.popularity import SECONDS_PER_DAY, all_time_key, day_key

# Exactly `all` or whole days; sub-day windows are refused rather than rounded up, since the
# projection keeps day buckets and "1h" silently meaning a day would be a lie.
_WINDOW = re.compile(r"([1-9][0-9]{0,2})d")
MAX_WINDOW_DAYS = 366


class BadWindow(ValueError):
    pass


@dataclass(frozen=True)
class Window:
    days: int | None  # None: all time

    @classmethod
    def parse(cls, text: str) -> Window:
        if text == "all":
            return cls(None)
        match = _WINDOW.fullmatch(text)
        if not match:
            raise BadWindow(
                f"window {text!r} is not 'all' or a whole number of days such as '1d', '7d', '30d' "
                "(popularity is kept per day, so windows shorter than a day are not offered)"
            )
        days = int(match.group(1))
        if not 1 <= days <= MAX_WINDOW_DAYS:
            raise BadWindow(f"window {text!r} must be between 1d and {MAX_WINDOW_DAYS}d")
        return cls(days)

    def bucket_weights(
        self, item_type: str, half_life_days: float, at: float | None = None, decay: bool = True
    ) -> dict[str, float]:
        """The sorted-set keys to sum, with their decay weights."""
        if self.days is None:
            return {all_time_key(item_type): 1.0}
        today = int((time.time() if at is None else at) // SECONDS_PER_DAY)
        weights = {}
        for age in range(self.days):
            weight = 0.5 ** (age / half_life_days) if decay and half_life_days > 0 else 1.0
            weights[day_key(item_type, today - age)] = weight
        return weights
