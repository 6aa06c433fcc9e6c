"""The OpenAPI parts of A/B experiments: the attribution fields of a served list, the
`recommendation_id` clients send back, and `GET /v1/experiments` with its example.

Kept beside movieaugur/openapi.py (which merges these in) so the experiment's contract reads in
one place and the spec module does not grow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_SCHEMAS = "#/components/schemas/"
EXAMPLE_RECOMMENDATION_ID = "home.als.5f0c1e9a3b7d2c4e8a61"

#: Fields every /v1 recommendations answer carries (merged into the Recommendations schema).
SERVED_FIELDS: dict[str, Any] = {
    "recommendation_id": {
        "type": "string", "maxLength": 128, "pattern": "^[A-Za-z0-9_.-]{1,128}$",
        "description": "this list's id: send it back as `recommendation_id` with the clicks, views and ratings it leads to",
    },
    "experiment": {"type": ["string", "null"], "description": "the A/B experiment the list was served in (null: none)"},
    "variant": {"type": ["string", "null"], "description": "the user's variant in that experiment (a stable hash of user and experiment)"},
}
SERVED_EXAMPLE = {"recommendation_id": EXAMPLE_RECOMMENDATION_ID, "experiment": "home", "variant": "als"}

_COUNTS: dict[str, Any] = {
    "variant": {"type": "string"},
    "model": {"type": ["string", "null"], "description": "the variant's configured model (null: no longer configured)"},
    "share": {"type": "number", "description": "its configured share of the experiment's users"},
    "exposures": {"type": "integer", "description": "lists served in the variant (exposure events in the log)"},
    "items_shown": {"type": "integer"},
    "clicks": {"type": "integer", "description": "clicks sent back with a recommendation id of the variant"},
    "conversions": {"type": "integer", "description": "MOVIEAUGUR_EXPERIMENT_CONVERSION_ACTIONS sent back likewise"},
    "click_through_rate": {"type": "number", "description": "clicks per list served"},
    "conversion_rate": {"type": "number", "description": "conversions per list served"},
    "actions": {"type": "object", "additionalProperties": {"type": "integer"}, "description": "every attributed action, counted"},
}
_EXAMPLE = {"experiments": [{"experiment": "home", "configured": True, "default": True, "variants": [
    {"variant": "als", "model": "als", "share": 0.5, "exposures": 493, "items_shown": 4930, "clicks": 175,
     "conversions": 90, "click_through_rate": 0.354970, "conversion_rate": 0.182556, "actions": {"click": 175, "view": 90}},
    {"variant": "ease", "model": "ease", "share": 0.5, "exposures": 508, "items_shown": 5080, "clicks": 93,
     "conversions": 41, "click_through_rate": 0.183071, "conversion_rate": 0.080709, "actions": {"click": 93, "view": 41}},
]}]}


def experiment_schemas() -> dict[str, Any]:
    return {
        "VariantCounts": {"type": "object", "required": list(_COUNTS), "properties": _COUNTS},
        "Experiments": {
            "type": "object",
            "required": ["experiments"],
            "properties": {"experiments": {"type": "array", "items": {
                "type": "object",
                "required": ["experiment", "configured", "default", "variants"],
                "properties": {
                    "experiment": {"type": "string"},
                    "configured": {"type": "boolean", "description": "false: the log has counts, the configuration no longer has it"},
                    "default": {"type": "boolean", "description": "serves requests that name no model (MOVIEAUGUR_DEFAULT_EXPERIMENT)"},
                    "variants": {"type": "array", "items": {"$ref": _SCHEMAS + "VariantCounts"}},
                },
            }}},
        },
    }


def experiment_paths(operation: Callable[..., dict[str, Any]], ok: Callable[..., dict[str, Any]],
                     ref: Callable[[str], dict[str, str]], security: list[dict[str, list[str]]]) -> dict[str, Any]:
    return {
        "/v1/experiments": {"get": operation(
            "getExperiments", "A/B experiments: per-variant exposures, click-through and conversion", "queries",
            ok("Every configured experiment (and any the log still counts), each variant with its counts", ref("Experiments"),
               _EXAMPLE),
            description="Counts are a projection of the log (exposure events and the interactions sent back with a "
                        "recommendation_id), so a replay rebuilds them. Configure experiments with MOVIEAUGUR_EXPERIMENTS; "
                        "serve one with `?experiment=` on the recommendations route.",
            errors=("401",), security=security)},
    }
