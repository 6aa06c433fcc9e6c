"""The OpenAPI 3.1 document the services serve at /openapi.json, and a docs page rendered from it.

Request bodies and query parameters come from the same pydantic models that validate them, so the
spec cannot drift from what the code accepts.
"""

from __future__ import annotations

import html
from typing import Any

from pydantic import BaseModel, TypeAdapter

from commands.schemas import InteractionIn, ItemIn, ItemWithIdIn, LegacyEvent
from queries.params import LegacyListParams, ListParams, PopularityParams, RecommendationParams, SimilarParams

ITEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "object_type"],
    "properties": {
        "id": {"type": "string"},
        "object_type": {"type": "string"},
        "title": {"type": "string"},
        "description": {"type": "string"},
        "release_date": {"type": "string"},
        "categories": {"type": "array", "items": {"type": "string"}},
        "keywords": {"type": "array", "items": {"type": "string"}},
        "creators": {"type": "array", "items": {"type": "string"}},
        "score": {"type": "number"},
    },
}
RANKED_SCHEMA = {
    "type": "object",
    "properties": {
        "model": {"type": ["string", "null"]},
        "model_version": {"type": ["string", "null"]},
        "fallback": {"type": ["string", "null"], "description": "'popularity' when the model had nothing"},
        "items": {"type": "array", "items": {"$ref": "#/components/schemas/Item"}},
    },
}
APPENDED = {"type": "object", "properties": {"appended": {"type": "integer"}, "duplicates": {"type": "integer"}}}
ERROR = {"type": "object", "properties": {"error": {"type": "string"}, "details": {"type": "array"}}}


def _query(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema()
    return [
        {"name": name, "in": "query", "required": False, "schema": prop, "description": prop.get("description", "")}
        for name, prop in schema["properties"].items()
    ]


def _path(*names: str) -> list[dict[str, Any]]:
    return [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}} for n in names]


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _op(summary: str, params: list[dict[str, Any]], ok: dict[str, Any], body: dict | None = None, write: bool = False) -> dict:
    op: dict[str, Any] = {"summary": summary, "parameters": params, "responses": {"200": {"description": "OK", **_json(ok)}}}
    if body is not None:
        op["requestBody"] = {"required": True, **_json(body)}
        op["responses"]["400"] = {"description": "Invalid input: names the element and the field", **_json(ERROR)}
        op["responses"]["503"] = {"description": "Event log unavailable; nothing recorded", **_json(ERROR)}
    else:
        op["responses"]["404"] = {"description": "Nothing known", **_json(ERROR)}
    if write:
        op["security"] = [{"apiKey": []}]
    return op


def build_spec(max_batch: int) -> dict[str, Any]:
    def batch(model: type[BaseModel]) -> dict[str, Any]:
        item = TypeAdapter(model).json_schema()
        return {"type": "array", "minItems": 1, "maxItems": max_batch, "items": item}

    items_list = {"type": "array", "items": {"$ref": "#/components/schemas/Item"}}
    ranked = {"$ref": "#/components/schemas/Ranked"}
    paths = {
        "/events": {"post": _op("Record views (older API, unchanged)", [], APPENDED, batch(LegacyEvent))},
        "/popularity/{object_type}": {"get": _op("Most popular items of a type (older API)", _path("object_type") + _query(LegacyListParams), items_list)},
        "/recommendations/{model_name}/users/{user_id}": {
            "get": _op("Recommendations for a user (older API); X-Recommendation-Fallback marks a fallback",
                       _path("model_name", "user_id") + _query(LegacyListParams), items_list)
        },
        "/v1/events": {"post": _op("Record interactions (idempotent by event_id)", [], APPENDED, batch(InteractionIn), write=True)},
        "/v1/items": {"post": _op("Catalog metadata, batch form", [], APPENDED, batch(ItemWithIdIn), write=True)},
        "/v1/items/{item_type}/{item_id}": {
            "put": _op("Catalog metadata of one item", _path("item_type", "item_id"), APPENDED, TypeAdapter(ItemIn).json_schema(), write=True),
            "get": _op("One item with its metadata and popularity", _path("item_type", "item_id"), ITEM_SCHEMA),
        },
        "/v1/items/{item_type}/{item_id}/similar": {"get": _op("More like this", _path("item_type", "item_id") + _query(SimilarParams), ranked)},
        "/v1/popularity/{item_type}": {"get": _op("Popularity with windows and decay", _path("item_type") + _query(PopularityParams), ranked)},
        "/v1/users/{user_id}/recommendations": {"get": _op("Recommendations, seen items filtered", _path("user_id") + _query(RecommendationParams), ranked)},
        "/v1/users/{user_id}/history": {"get": _op("What a user interacted with, latest first", _path("user_id") + _query(ListParams), {"type": "object"})},
        "/v1/models": {"get": _op("Published models", [], {"type": "object"})},
        "/v1/models/{name}": {"get": _op("One published model: version, parameters, metrics", _path("name"), {"type": "object"})},
        "/v1/item-types": {"get": _op("Registered item types", [], {"type": "object"})},
        "/healthz": {"get": _op("Liveness", [], {"type": "object"})},
        "/readyz": {"get": _op("Readiness: stores reachable", [], {"type": "object"})},
        "/metrics": {"get": _op("Prometheus metrics", [], {"type": "string"})},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "MovieAugur", "version": "1", "description": "Event-sourced recommendations: write interactions, read popularity and recommendations."},
        "paths": paths,
        "components": {
            "schemas": {"Item": ITEM_SCHEMA, "Ranked": RANKED_SCHEMA},
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
        },
    }


def render_docs(spec: dict[str, Any]) -> str:
    """A self-contained HTML page (no CDN: it must work offline)."""
    rows = []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            params = ", ".join(f"{p['name']}" + ("" if p["in"] == "path" else "?") for p in op["parameters"])
            rows.append(
                f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}</code></td>"
                f"<td>{html.escape(op['summary'])}</td><td>{html.escape(params)}</td></tr>"
            )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>MovieAugur API</title>"
        "<style>body{font-family:sans-serif;margin:2em}td{padding:4px 12px;border-bottom:1px solid #ddd}</style>"
        "</head><body><h1>MovieAugur API</h1><p>Machine-readable: <a href='/openapi.json'>/openapi.json</a>. "
        "Writes under /v1 take an <code>X-API-Key</code> header when keys are configured.</p>"
        "<table><tr><th>method</th><th>path</th><th>what</th><th>parameters</th></tr>" + "".join(rows) + "</table></body></html>"
    )
