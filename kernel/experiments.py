"""A/B experiments: what one is (variants, each a model and a traffic share), who is in which
variant, and the recommendation ids that carry the variant back with a user's clicks.

It lives in the kernel because three layers must agree on it and none may import another's: the
settings validate the configuration (MOVIEAUGUR_EXPERIMENTS), the query side assigns users and
mints ids, the write API checks the ids clients send back, and the experiments projection reads the
variant out of them. The id is self-describing (`<experiment>.<variant>.<token>`) so that
attributing a click is a pure function of the click event: a projection cannot look anything up,
and the write side knows nothing of what was served.

Assignment is a stable hash of (experiment, user): the same user gets the same variant in every
process and after every restart, with no state to store, and users of different experiments are
split independently of each other.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: Experiment and variant names: lower-case letters, digits, '-', '_' (no '.', which separates
#: the parts of a recommendation id, and no ':', which separates a variant from its counter).
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
#: Model names a variant may serve (as the recommendations route accepts them).
MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
#: What the write API accepts as a recommendation id: bounded, a URL- and log-safe charset.
RECOMMENDATION_ID = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
RECOMMENDATION_ID_MAX = 128
_SHARE_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Variant:
    name: str
    model: str
    share: float


@dataclass(frozen=True)
class Experiment:
    name: str
    variants: tuple[Variant, ...]

    def assign(self, user_id: str) -> Variant:
        """The user's variant: a point in [0, 1) from a hash of (experiment, user), placed on the
        variants' cumulative shares (in their configured order)."""
        digest = hashlib.blake2b(f"{self.name}\x00{user_id}".encode(), digest_size=8).digest()
        point = int.from_bytes(digest, "big") / 2**64
        total = 0.0
        for variant in self.variants:
            total += variant.share
            if point < total:
                return variant
        return self.variants[-1]  # shares sum to 1 within rounding: the last takes the remainder

    def describe(self) -> dict[str, Any]:
        return {
            "experiment": self.name,
            "variants": [{"variant": v.name, "model": v.model, "share": v.share} for v in self.variants],
        }


def parse_experiments(raw: Mapping[str, Any]) -> dict[str, Experiment]:
    """`{"home": {"control": {"model": "als", "share": 0.5}, "ease": {"model": "ease", "share": 0.5}}}`
    → experiments; a ValueError that names the experiment and variant on anything invalid."""
    if not isinstance(raw, Mapping):
        raise ValueError("MOVIEAUGUR_EXPERIMENTS must be a JSON object of experiments")
    experiments: dict[str, Experiment] = {}
    for name, variants in raw.items():
        if not isinstance(name, str) or not NAME.match(name):
            raise ValueError(f"experiment name {name!r} is not valid: lower-case letters, digits, '-' or '_' (at most 32)")
        if not isinstance(variants, Mapping) or not variants:
            raise ValueError(f"experiment {name!r} needs an object of variants, each {{'model': ..., 'share': ...}}")
        parsed = tuple(_variant(name, variant, spec) for variant, spec in variants.items())
        total = math.fsum(v.share for v in parsed)
        if abs(total - 1.0) > _SHARE_TOLERANCE:
            raise ValueError(f"the shares of experiment {name!r} sum to {total:g}, not 1")
        experiments[name] = Experiment(name, parsed)
    return experiments


def _variant(experiment: str, name: Any, spec: Any) -> Variant:
    where = f"experiment {experiment!r} variant {name!r}"
    if not isinstance(name, str) or not NAME.match(name):
        raise ValueError(f"{where}: the name is not valid: lower-case letters, digits, '-' or '_' (at most 32)")
    if not isinstance(spec, Mapping) or set(spec) - {"model", "share"}:
        raise ValueError(f"{where}: give exactly 'model' and 'share'")
    model, share = spec.get("model"), spec.get("share")
    if not isinstance(model, str) or not MODEL.match(model):
        raise ValueError(f"{where}: 'model' must name a model (letters, digits, '_', '.', '-')")
    if isinstance(share, bool) or not isinstance(share, int | float) or not math.isfinite(share) or not 0 < share <= 1:
        raise ValueError(f"{where}: 'share' must be a number in (0, 1], not {share!r}")
    return Variant(name, model, float(share))


#: Tokens of recommendation ids: 80 random bits from a generator seeded from the OS once per
#: process. Why not `secrets` per id: an os.urandom call per served list was 5 % of a kept
#: recommendation read (py-spy), and the id needs uniqueness, not unpredictability (attribution
#: trusts the client, like every interaction does: `attribution` below).
_tokens = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _tokens.seed(os.urandom(32)))  # a forked child never repeats its parent


def new_recommendation_id(experiment: str | None = None, variant: str | None = None) -> str:
    """A fresh id for one served list: `<experiment>.<variant>.<token>` inside an experiment, the
    bare token outside one (clicks on it are recorded, and counted in no experiment)."""
    token = f"{_tokens.getrandbits(80):020x}"
    return f"{experiment}.{variant}.{token}" if experiment and variant else token


def attribution(recommendation_id: str | None) -> tuple[str, str] | None:
    """(experiment, variant) named by a recommendation id, or None for an id outside experiments
    (or one no server minted: attribution trusts the client, like every interaction does)."""
    if not recommendation_id:
        return None
    parts = recommendation_id.split(".")
    if len(parts) != 3 or not NAME.match(parts[0]) or not NAME.match(parts[1]) or not parts[2]:
        return None
    return parts[0], parts[1]
