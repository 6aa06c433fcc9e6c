"""The OpenAPI 3.1 document the services serve at /openapi.json, the interactive docs at /docs, and
the small home page at /.

Request bodies and query parameters come from the same pydantic models that validate them, so the
spec cannot drift from what the code accepts; tests/unit/test_api_docs.py checks that every route
the app registers is documented (and nothing else), that the document is valid OpenAPI 3.1, and
that every example validates against its schema.

The docs page is Swagger UI, whose files come from the `swagger-ui-py` package on PyPI (Swagger UI
5.x, Apache-2.0; 5.x is the first line that renders OpenAPI 3.1). The app serves the few files the
page needs itself, under /docs/static/, so the docs work offline and load nothing from a CDN.
"""

from __future__ import annotations

import html
import importlib.util
import logging
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from commands.http import MAX_ITEM_BODY
from commands.schemas import InteractionIn, ItemIn, ItemWithIdIn, LegacyEvent, ListItemIn, ListOrderIn
from kernel.http import json_response
from kernel.settings import Settings
from movieaugur.openapi_experiments import (
    EXAMPLE_RECOMMENDATION_ID,
    SERVED_EXAMPLE,
    SERVED_FIELDS,
    experiment_paths,
    experiment_schemas,
)
from queries.params import (
    ArrivalsParams,
    LegacyListParams,
    ListParams,
    PopularityParams,
    RecommendationParams,
    SimilarParams,
)

log = logging.getLogger(__name__)

DOCS_STATIC = "/docs/static"
_SCHEMAS = "#/components/schemas/"
_RESPONSES = "#/components/responses/"

# -- examples ----------------------------------------------------------------------------------

_T = 1_700_000_000  # an example Unix time (2023-11-14), in the past as the API requires
_HEAT = {"id": "m1", "object_type": "movie", "title": "Heat", "release_date": "1995-12-15", "categories": ["Crime"], "score": 4.5}
_ALIEN = {"id": "m2", "object_type": "movie", "title": "Alien", "categories": ["Horror", "Sci-Fi"], "score": 3.0}
_ITEMS = [_HEAT, _ALIEN]
_INTERACTIONS: list[dict[str, Any]] = [
    {"event_id": "3f1e8c1a-6d0b-4a43-9a4b-1f7c2b9e0a11", "user_id": "u1", "item_id": "m1", "item_type": "movie",
     "action": "rating", "value": 4.5, "timestamp": _T},
    {"event_id": "a8c2d3e4-7f60-4b1a-8c9d-0e1f2a3b4c5d", "user_id": "u1", "item_id": "m2", "item_type": "movie", "action": "like"},
    {"event_id": "c41d9e2f-0b7a-4e36-9f15-2d8c6a4b1e70", "user_id": "u1", "item_id": "m1", "item_type": "movie",
     "action": "click", "recommendation_id": EXAMPLE_RECOMMENDATION_ID},
]
_LEGACY_EVENTS: list[dict[str, Any]] = [{"user_id": "u1", "item_id": "m1", "object_type": "movie", "timestamp": _T}]
_ITEM_METADATA = {"title": "Heat", "description": "A heist film.", "release_date": "1995-12-15",
                  "categories": ["Crime", "Thriller"], "keywords": ["heist"], "creators": ["Michael Mann"]}
_CATALOG: list[dict[str, Any]] = [{"item_type": "movie", "item_id": "m1", "title": "Heat", "categories": ["Crime"]},
            {"item_type": "series", "item_id": "s1", "title": "The Wire"}]
_MODEL = {"model": "default", "model_version": "20240101T000000-als", "algorithm": "als",
          "params": {"factors": 64, "iterations": 15}, "metrics": {"precision@10": 0.21}, "users": 610,
          "items": 9724, "published_at": _T}
_METRICS_TEXT = ('# HELP movieaugur_http_requests_total HTTP requests\n# TYPE movieaugur_http_requests_total counter\n'
                 'movieaugur_http_requests_total{method="GET",route="/healthz",status="200"} 1.0\n')

# -- schemas the pydantic models do not give -----------------------------------------------------

_ITEM_FIELDS: dict[str, Any] = {
    "id": {"type": "string"},
    "object_type": {"type": "string", "description": "the item type"},
    "title": {"type": "string"},
    "description": {"type": "string"},
    "release_date": {"type": "string"},
    "categories": {"type": "array", "items": {"type": "string"}},
    "keywords": {"type": "array", "items": {"type": "string"}},
    "creators": {"type": "array", "items": {"type": "string"}},
}
_OBJECT_OR_NULL = {"type": ["string", "null"]}
EXTRA_SCHEMAS: dict[str, Any] = {
    "Item": {
        "type": "object",
        "description": "An item with the catalog metadata known for it (unknown fields are omitted) and its score.",
        "required": ["id", "object_type"],
        "properties": {**_ITEM_FIELDS, "score": {"type": "number"}},
    },
    "ItemDetails": {
        "type": "object",
        "required": ["id", "object_type", "popularity"],
        "properties": {**_ITEM_FIELDS, "updated_at": {"type": "integer"},
                       "popularity": {"type": "number", "description": "all-time popularity score"}},
    },
    "HistoryItem": {
        "type": "object",
        "required": ["id", "object_type", "last_interaction"],
        "properties": {**_ITEM_FIELDS, "last_interaction": {"type": "integer", "description": "Unix seconds"}},
    },
    "Ranked": {
        "type": "object",
        "required": ["items"],
        "properties": {
            "model": _OBJECT_OR_NULL,
            "model_version": _OBJECT_OR_NULL,
            "fallback": {"type": ["string", "null"], "description": "'popularity' when the model had nothing for the user"},
            "items": {"type": "array", "items": {"$ref": _SCHEMAS + "Item"}},
        },
    },
    "PopularityPage": {
        "allOf": [{"$ref": _SCHEMAS + "Ranked"}],
        "type": "object",
        "required": ["item_type", "window", "offset", "items"],
        "properties": {"item_type": {"type": "string"}, "window": {"type": "string"}, "offset": {"type": "integer"}},
    },
    "Recommendations": {
        "allOf": [{"$ref": _SCHEMAS + "Ranked"}],
        "type": "object",
        "required": ["user_id", "recommendation_id", "experiment", "variant", "model", "items"],
        "properties": {"user_id": {"type": "string"}, **SERVED_FIELDS},
    },
    "Similar": {
        "allOf": [{"$ref": _SCHEMAS + "Ranked"}],
        "type": "object",
        "required": ["item_type", "item_id", "model", "model_version", "items"],
        "properties": {"item_type": {"type": "string"}, "item_id": {"type": "string"}},
    },
    "History": {
        "type": "object",
        "required": ["user_id", "items"],
        "properties": {"user_id": {"type": "string"}, "items": {"type": "array", "items": {"$ref": _SCHEMAS + "HistoryItem"}}},
    },
    "Model": {
        "type": "object",
        "required": ["model", "model_version"],
        "properties": {
            "model": {"type": "string"}, "model_version": {"type": "string"}, "algorithm": {"type": "string"},
            "params": {"type": "object"}, "metrics": {"type": "object"}, "users": {"type": "integer"},
            "items": {"type": "integer", "description": "how many items the model knows"},
            "published_at": {"type": ["number", "string", "null"]},
        },
    },
    "Models": {"type": "object", "required": ["models"],
               "properties": {"models": {"type": "array", "items": {"$ref": _SCHEMAS + "Model"}}}},
    "ItemTypes": {"type": "object", "required": ["item_types"],
                  "properties": {"item_types": {"type": "array", "items": {"type": "string"}}}},
    "Appended": {
        "type": "object",
        "required": ["appended", "duplicates"],
        "properties": {
            "appended": {"type": "integer", "minimum": 0, "description": "events added to the log"},
            "duplicates": {"type": "integer", "minimum": 0,
                           "description": "events whose event_id the log already held with the same content (a retry): not added again"},
        },
    },
    "Health": {"type": "object", "required": ["status", "roles"],
               "properties": {"status": {"const": "ok"}, "roles": {"type": "array", "items": {"type": "string"}}}},
    "Ready": {"type": "object", "required": ["ready", "problems"],
              "properties": {"ready": {"type": "boolean"}, "problems": {"type": "array", "items": {"type": "string"}}}},
    "Error": {
        "type": "object",
        "description": "Every error answer: one line saying what is wrong and where.",
        "required": ["error"],
        "properties": {"error": {"type": "string"}},
    },
    "ValidationError": {
        "type": "object",
        "description": "A 400: the first problem as one line, and up to 20 problems with the element index and field.",
        "required": ["error"],
        "properties": {
            "error": {"type": "string"},
            "details": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["index", "field", "message"],
                    "properties": {
                        "index": {"type": ["integer", "null"], "description": "the element of the batch (null: the body or a query parameter)"},
                        "field": {"type": ["string", "null"]},
                        "message": {"type": "string"},
                    },
                },
            },
        },
    },
    "Conflict": {
        "type": "object",
        "description": "An event_id reused with different content: nothing of the batch was appended.",
        "required": ["error", "index", "event_id"],
        "properties": {"error": {"type": "string"}, "index": {"type": "integer"}, "event_id": {"type": "string"}},
    },
}

_REQUEST_ID_HEADER = {"$ref": "#/components/headers/X-Request-Id"}


def _error_response(description: str, schema: str, example: dict[str, Any]) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {"X-Request-Id": _REQUEST_ID_HEADER},
        "content": {"application/json": {"schema": {"$ref": _SCHEMAS + schema}, "example": example}},
    }


def _error_responses(max_body_bytes: int) -> dict[str, Any]:
    return {
        "BadRequest": _error_response(
            "Invalid input: the body, an element or a query parameter; names the element and the field. Nothing is recorded.",
            "ValidationError",
            {"error": "element 1, field 'action': unknown action 'purchase'; configured: view, click, like, dislike, watchlist, rating",
             "details": [{"index": 1, "field": "action",
                          "message": "unknown action 'purchase'; configured: view, click, like, dislike, watchlist, rating"}]},
        ),
        "BadQuery": _error_response(
            "A query parameter is unknown, out of range or malformed.",
            "ValidationError",
            {"error": "field 'limit': Input should be less than or equal to 1000",
             "details": [{"index": None, "field": "limit", "message": "Input should be less than or equal to 1000"}]},
        ),
        "Unauthorized": _error_response(
            "A write needs a key from MOVIEAUGUR_API_KEYS in X-API-Key; when MOVIEAUGUR_READ_API_KEYS is set, reads need one too.",
            "Error",
            {"error": "this write needs a valid API key in the X-API-Key header"},
        ),
        "NotFound": _error_response("Nothing is known for what was asked; the message says what.", "Error",
                                    {"error": "no movie with id 'm404' is known"}),
        "Conflict": _error_response(
            "An event_id was already used with different content (earlier in the batch, or in the log). Nothing is recorded.",
            "Conflict",
            {"error": "element 0: event_id 'e1' is already used by an event already in the log with different content; "
                      "an event id names one fact: send the same content to retry, or a new id for a new fact",
             "index": 0, "event_id": "e1"},
        ),
        "PayloadTooLarge": _error_response(
            f"The body (declared, streamed or decompressed) is larger than {max_body_bytes} bytes: split the batch.",
            "Error",
            {"error": f"request body exceeds {max_body_bytes} bytes (MOVIEAUGUR_MAX_BATCH x MOVIEAUGUR_MAX_EVENT_BYTES); split it into smaller batches"},
        ),
        "Unavailable": _error_response(
            "The event log is unavailable; nothing was recorded. Retry later with the same event ids. (Rarely "
            "the log did not confirm a commit it was asked for, and the error says the write may be recorded: a "
            "retry with the same event ids is taken once either way.)",
            "Error",
            {"error": "the event log is unavailable; nothing was recorded; retry later (timeout)"},
        ),
        "InternalError": _error_response("An unexpected error, logged with the request id.", "Error",
                                         {"error": "internal error; quote request id 5f1c0a9e3b2d4c6f when reporting it"}),
    }


# -- building blocks ---------------------------------------------------------------------------


def _ref_response(name: str) -> dict[str, str]:
    return {"$ref": _RESPONSES + name}


def _query(model: type[BaseModel], examples: dict[str, Any] | None = None, item_types: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Query parameters from a pydantic model; `None`-able fields are just optional in a query."""
    schema = model.model_json_schema()
    required = set(schema.get("required", ()))
    params = []
    for name, prop in schema["properties"].items():
        prop = dict(prop)
        prop.pop("title", None)
        description = prop.pop("description", "")
        options = prop.get("anyOf")
        if options and {"type": "null"} in options and len(options) == 2:
            [kept] = [option for option in options if option != {"type": "null"}]
            prop = {**{k: v for k, v in prop.items() if k != "anyOf"}, **kept}
            if prop.get("default", 0) is None:
                del prop["default"]
        if name == "item_type" and item_types:
            prop["enum"] = list(item_types)
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required, "schema": prop}
        if prop.get("type") == "array":  # sent comma-separated: exclude=movie:m1,movie:m2
            prop.pop("default", None)
            prop.pop("uniqueItems", None)
            param.update(style="form", explode=False)
        if description:
            param["description"] = description
        if examples and name in examples:
            param["example"] = examples[name]
        params.append(param)
    return params


_PATH_EXAMPLES = {"item_type": "movie", "object_type": "movie", "item_id": "m1", "user_id": "u1", "model_name": "default",
                  "name": "default"}


def _path(*names: str, item_types: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    params = []
    for name in names:
        schema: dict[str, Any] = {"type": "string"}
        if name in ("item_type", "object_type") and item_types:
            schema["enum"] = list(item_types)
        params.append({"name": name, "in": "path", "required": True, "schema": schema, "example": _PATH_EXAMPLES.get(name, name)})
    return params


def _ok(description: str, schema: dict[str, Any], example: Any, media: str = "application/json",
        headers: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {"X-Request-Id": _REQUEST_ID_HEADER, **(headers or {})},
        "content": {media: {"schema": schema, "example": example}},
    }


_OPTIONAL_KEY: list[dict[str, list[str]]] = [{}, {"apiKey": []}]
_NEEDS_KEY: list[dict[str, list[str]]] = [{"apiKey": []}]


def _operation(
    operation_id: str,
    summary: str,
    tag: str,
    ok: dict[str, Any],
    *,
    description: str = "",
    parameters: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
    errors: tuple[str, ...] = (),
    security: list[dict[str, list[str]]] | None = None,
    more: dict[str, Any] | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": operation_id, "summary": summary, "tags": [tag]}
    if description:
        op["description"] = description
    op["parameters"] = parameters or []
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": body}}
    responses: dict[str, Any] = {"200": ok}
    names = {"400": "BadRequest", "400q": "BadQuery", "401": "Unauthorized", "404": "NotFound", "409": "Conflict",
             "413": "PayloadTooLarge", "503": "Unavailable"}
    for code in errors:
        responses[code[:3]] = _ref_response(names[code])
    responses.update(more or {})
    responses["500"] = _ref_response("InternalError")
    op["responses"] = responses
    op["security"] = security if security is not None else []
    return op


def _redirect(operation_id: str, summary: str, tag: str, parameters: list[dict[str, Any]]) -> dict[str, Any]:
    """An operation that answers with a redirect (302) instead of content."""
    op = _operation(operation_id, summary, tag, {}, parameters=parameters, errors=("401",), security=_OPTIONAL_KEY)
    del op["responses"]["200"]
    op["responses"] = {"302": {"description": "Found: the page to go to", "headers": {
        "X-Request-Id": _REQUEST_ID_HEADER, "Location": {"schema": {"type": "string"}, "description": "where the page is"}}},
        **op["responses"]}
    return op


def _model_schemas(ref_template: str) -> dict[str, Any]:
    models: list[type[BaseModel]] = [LegacyEvent, InteractionIn, ItemIn, ItemWithIdIn]
    _, top = models_json_schema([(m, "validation") for m in models], ref_template=ref_template)
    schemas: dict[str, Any] = top["$defs"]
    return schemas


def _constrain(schemas: dict[str, Any], settings: Settings | None) -> None:
    """The configured item types, actions and rating range, as enums and descriptions."""
    if settings is None:
        return
    item_types = list(settings.item_types)
    actions = list(settings.action_weights)
    for name, field in (("LegacyEvent", "object_type"), ("InteractionIn", "item_type"), ("ItemWithIdIn", "item_type")):
        schemas[name]["properties"][field]["enum"] = item_types
    interaction = schemas["InteractionIn"]["properties"]
    interaction["action"]["enum"] = actions
    interaction["action"]["description"] = "weights: " + ", ".join(f"{a} {w:g}" for a, w in settings.action_weights.items())
    interaction["value"]["description"] = (
        f"required for 'rating': between {settings.rating_min:g} and {settings.rating_max:g}"
    )
    interaction["timestamp"]["description"] = (
        f"Unix seconds; default: when the server receives it; at most {settings.clock_skew_seconds}s in the future"
    )
    interaction["event_id"]["description"] = (
        "names the fact: a retry with the same id and content is counted as a duplicate, not appended again; "
        "the same id with other content is a 409"
    )


# -- users' lists, new arrivals, notifications -----------------------------------------------------

_LIST_ITEMS = [{**{k: v for k, v in _HEAT.items() if k != "score"}, "placed_at": _T, "position": 0},
               {**{k: v for k, v in _ALIEN.items() if k != "score"}, "placed_at": _T + 60, "position": 1}]
_NOTICE = {"id": "notice:1f2e3d4c5b6a79880a1b2c3d", "kind": "new_arrival", "notified_at": _T,
           "reason": {"categories": ["Crime"], "affinity": 7}, "item": {k: v for k, v in _HEAT.items() if k != "score"}}
_COLLECTION_SCHEMAS: dict[str, Any] = {
    "UserLists": {
        "type": "object",
        "required": ["user_id", "lists"],
        "properties": {"user_id": {"type": "string"}, "lists": {"type": "array", "items": {
            "type": "object", "required": ["name", "count", "effect"],
            "properties": {"name": {"type": "string"}, "count": {"type": "integer", "minimum": 0},
                           "effect": {"enum": ["exclude", "boost", "none"],
                                      "description": "what the list does to recommendations (MOVIEAUGUR_LIST_EFFECTS)"}}}}},
    },
    "ListedItem": {
        "type": "object",
        "required": ["id", "object_type", "placed_at", "position"],
        "properties": {**_ITEM_FIELDS,
                       "placed_at": {"type": "integer", "description": "Unix seconds: when the item got its place (added, or the list reordered)"},
                       "position": {"type": "integer", "minimum": 0, "description": "its place in the list, from 0"}},
    },
    "ListPage": {
        "type": "object",
        "required": ["user_id", "list", "effect", "offset", "items"],
        "properties": {"user_id": {"type": "string"}, "list": {"type": "string"}, "effect": {"enum": ["exclude", "boost", "none"]},
                       "offset": {"type": "integer"}, "items": {"type": "array", "items": {"$ref": _SCHEMAS + "ListedItem"}}},
    },
    "ArrivedItem": {
        "type": "object",
        "required": ["id", "object_type", "arrived_at"],
        "properties": {**_ITEM_FIELDS, "arrived_at": {"type": "integer", "description": "Unix seconds: when it was first catalogued"}},
    },
    "ArrivalsPage": {
        "type": "object",
        "required": ["item_type", "category", "offset", "items"],
        "properties": {"item_type": {"type": "string"}, "category": {"type": ["string", "null"]}, "offset": {"type": "integer"},
                       "items": {"type": "array", "items": {"$ref": _SCHEMAS + "ArrivedItem"}}},
    },
    "Notification": {
        "type": "object",
        "required": ["id", "kind", "notified_at", "reason", "item"],
        "properties": {
            "id": {"type": "string"}, "kind": {"type": "string", "description": "new_arrival"},
            "notified_at": {"type": "integer", "description": "Unix seconds"},
            "reason": {"type": "object", "description": "why this user: the item's categories in the user's history and how many history items are in them",
                       "properties": {"categories": {"type": "array", "items": {"type": "string"}}, "affinity": {"type": "integer"}}},
            "item": {"type": "object", "required": ["id", "object_type"], "properties": _ITEM_FIELDS},
        },
    },
    "Notifications": {
        "type": "object",
        "required": ["user_id", "offset", "notifications"],
        "properties": {"user_id": {"type": "string"}, "offset": {"type": "integer"},
                       "notifications": {"type": "array", "items": {"$ref": _SCHEMAS + "Notification"}}},
    },
}


def _collection_schemas(settings: Settings | None) -> dict[str, Any]:
    """The list write bodies (from their pydantic models) and the answers of the routes below."""
    _, top = models_json_schema([(m, "validation") for m in (ListItemIn, ListOrderIn)], ref_template=_SCHEMAS + "{model}")
    schemas: dict[str, Any] = {**top["$defs"], **_COLLECTION_SCHEMAS}
    if settings is not None:
        for name in ("ListItemIn", "ListItemRef"):
            schemas[name]["properties"]["item_type"]["enum"] = list(settings.item_types)
    for name in ("ListItemIn", "ListOrderIn"):
        schemas[name]["properties"]["event_id"]["description"] = (
            "optional: names this write, so a retry with the same id appends nothing whenever it comes; without it, "
            "the id is derived from the content and the second the write arrived in")
    return schemas


def _collection_paths(settings: Settings | None, path: Any, ref: Any) -> dict[str, Any]:
    """Users' lists (writes need a key when keys are set), new arrivals and notifications."""
    lists = list(settings.lists) if settings is not None else ["watchlist"]
    list_name = [{"name": "list_name", "in": "path", "required": True, "schema": {"type": "string", "enum": lists} if lists else
                  {"type": "string"}, "example": lists[0] if lists else "watchlist",
                  "description": "a configured list (MOVIEAUGUR_LISTS); another name is a 404 naming them"}]
    list_writes = ("400", "401", "404", "409", "413", "503")
    one = _ok("Recorded (a duplicate of an event already in the log is counted, not appended again)", ref("Appended"),
              {"appended": 1, "duplicates": 0})
    return {
        "/v1/users/{user_id}/lists": {"get": _operation(
            "getUserLists", "A user's lists: each configured list with its item count and effect", "queries",
            _ok("The lists", ref("UserLists"), {"user_id": "u1", "lists": [{"name": "watchlist", "count": 2, "effect": "exclude"}]}),
            parameters=path("user_id"), errors=("401",), security=_OPTIONAL_KEY)},
        "/v1/users/{user_id}/lists/{list_name}": {
            "get": _operation(
                "getUserList", "The items of one list, in order, with catalog metadata", "queries",
                _ok("The list's items, first first", ref("ListPage"),
                    {"user_id": "u1", "list": "watchlist", "effect": "exclude", "offset": 0, "items": _LIST_ITEMS}),
                parameters=path("user_id") + list_name + _query(ListParams), errors=("400q", "401", "404"), security=_OPTIONAL_KEY),
            "post": _operation(
                "addToList", "Add an item at the end of a list", "commands", one,
                description="An item already on the list keeps its place. Recorded as a `ListItemAdded` event; the lists view "
                            "follows within moments.",
                parameters=path("user_id") + list_name,
                body={"schema": ref("ListItemIn"), "example": {"item_type": "movie", "item_id": "m1"}},
                errors=list_writes, security=_NEEDS_KEY),
            "put": _operation(
                "reorderList", "Replace a list by these items, in this order", "commands", one,
                description="Items the body does not name are taken off the list; `{\"items\": []}` empties it. Items added "
                            "afterwards go after these.",
                parameters=path("user_id") + list_name,
                body={"schema": ref("ListOrderIn"), "example": {"items": [{"item_type": "movie", "item_id": "m2"},
                                                                          {"item_type": "movie", "item_id": "m1"}]}},
                errors=list_writes, security=_NEEDS_KEY),
        },
        "/v1/users/{user_id}/lists/{list_name}/{item_type}/{item_id}": {"delete": _operation(
            "removeFromList", "Take an item off a list", "commands", one,
            description="Removing an item that is not on the list changes nothing. `event_id` (optional) names this removal.",
            parameters=path("user_id") + list_name + path("item_type", "item_id") + [
                {"name": "event_id", "in": "query", "required": False, "schema": {"type": "string", "maxLength": 256},
                 "example": "6c1f0d2e-remove-m1"}],
            errors=("400", "401", "404", "409", "503"), security=_NEEDS_KEY)},
        "/v1/new-arrivals/{item_type}": {"get": _operation(
            "getNewArrivals", "Recently catalogued items, newest first", "queries",
            _ok("Items by the time they were first catalogued, newest first", ref("ArrivalsPage"),
                {"item_type": "movie", "category": "Crime", "offset": 0,
                 "items": [{**{k: v for k, v in _HEAT.items() if k != "score"}, "arrived_at": _T}]}),
            description="Re-cataloguing an item does not move it. Users whose history suits a new arrival best are notified "
                        "(GET /v1/users/{user_id}/notifications).",
            parameters=path("item_type") + _query(ArrivalsParams, {"category": "Crime"}),
            errors=("400q", "401", "404"), security=_OPTIONAL_KEY)},
        "/v1/users/{user_id}/notifications": {"get": _operation(
            "getNotifications", "A user's notifications (new arrivals that suit them), newest first", "queries",
            _ok("The notifications", ref("Notifications"), {"user_id": "u1", "offset": 0, "notifications": [_NOTICE]}),
            parameters=path("user_id") + _query(ListParams), errors=("400q", "401"), security=_OPTIONAL_KEY)},
    }


# -- the document ------------------------------------------------------------------------------


def build_spec(max_batch: int, settings: Settings | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document. With `settings`, the configured item types and actions become
    enums and the body limit is the configured one."""
    max_body_bytes = settings.max_body_bytes if settings is not None else max_batch * 1024 + 4096
    item_types = tuple(settings.item_types) if settings is not None else ()
    schemas = _model_schemas(_SCHEMAS + "{model}")
    _constrain(schemas, settings)
    schemas.update(EXTRA_SCHEMAS)
    schemas.update(_collection_schemas(settings))
    schemas.update(experiment_schemas())

    def batch(model: str, example: list[dict[str, Any]], what: str) -> dict[str, Any]:
        return {
            "schema": {"type": "array", "minItems": 1, "maxItems": max_batch, "items": {"$ref": _SCHEMAS + model},
                       "description": f"1 to {max_batch} {what}, at most {max_body_bytes} bytes in all; all are recorded or none"},
            "example": example,
        }

    def ref(name: str) -> dict[str, str]:
        return {"$ref": _SCHEMAS + name}

    items_list = {"type": "array", "items": ref("Item")}
    appended = _ok("Recorded (duplicates of events already in the log are counted, not appended again)", ref("Appended"),
                   {"appended": 2, "duplicates": 0})
    html_page = {"type": "string"}
    write_errors = ("400", "401", "413", "503")
    path = lambda *names: _path(*names, item_types=item_types)  # noqa: E731

    paths: dict[str, Any] = {
        "/events": {"post": _operation(
            "postLegacyEvents", "Record views (older API, unchanged)", "commands", appended,
            description="Each element is a view. Its event id is derived from its content, so posting it again is a duplicate. "
                        "Needs X-API-Key when keys are configured, unless MOVIEAUGUR_LEGACY_WRITES_WITHOUT_KEY.",
            body=batch("LegacyEvent", _LEGACY_EVENTS, "views"), errors=write_errors, security=_OPTIONAL_KEY)},
        "/popularity/{object_type}": {"get": _operation(
            "getLegacyPopularity", "Most popular items of a type (older API)", "queries",
            _ok("Items, most popular first", items_list, _ITEMS),
            description="Unknown query parameters are ignored (cache busters).",
            parameters=path("object_type") + _query(LegacyListParams), errors=("400q", "401", "404"), security=_OPTIONAL_KEY)},
        "/recommendations/{model_name}/users/{user_id}": {"get": _operation(
            "getLegacyRecommendations", "Recommendations for a user (older API)", "queries",
            _ok("Items, best first", items_list, _ITEMS, headers={
                "X-Model": {"schema": {"type": "string"}, "description": "the model that answered"},
                "X-Model-Version": {"schema": {"type": "string"}, "description": "its version (empty for a fallback)"},
                "X-Recommendation-Fallback": {"schema": {"type": "string", "enum": ["popularity"]},
                                              "description": "present when the model had nothing for this user"},
            }),
            parameters=path("model_name", "user_id") + _query(LegacyListParams), errors=("400q", "401", "404"),
            security=_OPTIONAL_KEY)},
        "/v1/events": {"post": _operation(
            "postEvents", "Record interactions (idempotent by event_id)", "commands", appended,
            description="A batch with one bad element appends nothing (400 naming element and field). An event_id sent again "
                        "with the same content is a duplicate; with other content a 409. Retry 503s with the same event ids.",
            body=batch("InteractionIn", _INTERACTIONS, "interactions"), errors=(*write_errors[:3], "409", "503"),
            security=_NEEDS_KEY)},
        "/v1/items": {"post": _operation(
            "postItems", "Catalog metadata, batch form", "commands", appended,
            description="Each element is an item's full metadata (it replaces what was known).",
            body=batch("ItemWithIdIn", _CATALOG, "items"), errors=write_errors, security=_NEEDS_KEY)},
        "/v1/items/{item_type}/{item_id}": {
            "put": _operation(
                "putItem", "Catalog metadata of one item", "commands",
                _ok("Recorded", ref("Appended"), {"appended": 1, "duplicates": 0}),
                description=f"The body is the item's full metadata (at most {MAX_ITEM_BODY} bytes).",
                parameters=path("item_type", "item_id"), body={"schema": ref("ItemIn"), "example": _ITEM_METADATA},
                errors=write_errors, security=_NEEDS_KEY),
            "get": _operation(
                "getItem", "One item with its metadata and all-time popularity", "queries",
                _ok("The item", ref("ItemDetails"), {**{k: v for k, v in _HEAT.items() if k != "score"}, "updated_at": _T, "popularity": 4.5}),
                parameters=path("item_type", "item_id"), errors=("401", "404"), security=_OPTIONAL_KEY),
        },
        "/v1/items/{item_type}/{item_id}/similar": {"get": _operation(
            "getSimilar", "More like this (from the trained model)", "queries",
            _ok("Similar items, most similar first", ref("Similar"),
                {"item_type": "movie", "item_id": "m1", "model": "default", "model_version": _MODEL["model_version"], "items": [_ALIEN]}),
            parameters=path("item_type", "item_id") + _query(SimilarParams), errors=("400q", "401", "404"), security=_OPTIONAL_KEY)},
        "/v1/popularity/{item_type}": {"get": _operation(
            "getPopularity", "Popularity with windows and decay", "queries",
            _ok("Items, most popular first", ref("PopularityPage"), {"item_type": "movie", "window": "7d", "offset": 0, "items": _ITEMS}),
            description="`window` is `all` or `1d`..`366d`; within a window, older interactions count less unless decay=false.",
            parameters=path("item_type") + _query(PopularityParams, {"window": "7d", "category": "Crime"}),
            errors=("400q", "401", "404"), security=_OPTIONAL_KEY)},
        "/v1/users/{user_id}/recommendations": {"get": _operation(
            "getRecommendations", "Recommendations, seen items filtered", "queries",
            _ok("Items, best first; a user the model has nothing for gets popularity, marked by `fallback`", ref("Recommendations"),
                {"user_id": "u1", **SERVED_EXAMPLE, "model": "als", "model_version": None, "fallback": "popularity",
                 "items": _ITEMS}),
            description="Every list has a `recommendation_id`; inside an A/B experiment (`?experiment=`, or "
                        "MOVIEAUGUR_DEFAULT_EXPERIMENT when no model is named) the user's variant's model answers.",
            parameters=path("user_id") + _query(RecommendationParams, {"exclude": ["movie:m3", "movie:m4"], "experiment": "home"}, item_types),
            errors=("400q", "401", "404"), security=_OPTIONAL_KEY)},
        "/v1/users/{user_id}/history": {"get": _operation(
            "getHistory", "What a user interacted with, latest first", "queries",
            _ok("The user's items", ref("History"),
                {"user_id": "u1", "items": [{**{k: v for k, v in _HEAT.items() if k != "score"}, "last_interaction": _T}]}),
            parameters=path("user_id") + _query(ListParams), errors=("400q", "401"), security=_OPTIONAL_KEY)},
        "/v1/models": {"get": _operation(
            "getModels", "Published models (the current version of each)", "queries",
            _ok("The models", ref("Models"), {"models": [_MODEL]}), errors=("401",), security=_OPTIONAL_KEY)},
        "/v1/models/{name}": {"get": _operation(
            "getModel", "One published model: version, parameters, metrics", "queries",
            _ok("The model", ref("Model"), _MODEL), description="`name` or `name@version`.",
            parameters=path("name"), errors=("401", "404"), security=_OPTIONAL_KEY)},
        "/v1/item-types": {"get": _operation(
            "getItemTypes", "Registered item types", "queries",
            _ok("The item types", ref("ItemTypes"), {"item_types": list(item_types or ("movie", "series"))}),
            errors=("401",), security=_OPTIONAL_KEY)},
        "/healthz": {"get": _operation(
            "getHealth", "Liveness", "operations",
            _ok("The process answers", ref("Health"), {"status": "ok", "roles": ["commands", "projectors", "queries"]}))},
        "/readyz": {"get": _operation(
            "getReady", "Readiness: the event log and the view store answer", "operations",
            _ok("Ready", ref("Ready"), {"ready": True, "problems": []}),
            more={"503": _ok("Not ready: what does not answer", ref("Ready"),
                             {"ready": False, "problems": ["event log: TimeoutError()"]})})},
        "/metrics": {"get": _operation(
            "getMetrics", "Prometheus metrics", "operations",
            _ok("Metrics in the Prometheus text format", {"type": "string"}, _METRICS_TEXT, media="text/plain"))},
        "/openapi.json": {"get": _operation(
            "getOpenApi", "This document", "docs", _ok("OpenAPI 3.1", {"type": "object"}, {"openapi": "3.1.0"}))},
        "/docs": {"get": _operation(
            "getDocs", "Interactive API docs (Swagger UI, served by this app)", "docs",
            _ok("An HTML page", html_page, "<!doctype html>...", media="text/html"))},
        DOCS_STATIC + "/{name}": {"get": _operation(
            "getDocsAsset", "A file of the docs page (Swagger UI's, from the swagger-ui-py package)", "docs",
            {"description": "The file", "headers": {"X-Request-Id": _REQUEST_ID_HEADER},
             "content": {media: {"schema": {"type": "string"}} for media in sorted(set(_ASSETS.values()))}},
            parameters=[{"name": "name", "in": "path", "required": True, "schema": {"type": "string", "enum": sorted(_ASSETS)},
                         "example": "swagger-ui.css"}],
            errors=("404",))},
        "/": {"get": _operation(
            "getHome", "Home page: links to the docs and the dashboard", "docs",
            _ok("An HTML page", html_page, "<!doctype html>...", media="text/html"))},
        "/dashboard": {"get": _operation(
            "getDashboard", "Dashboard: popularity, model registry, projector lag, ingest and error rates", "dashboard",
            _ok("An HTML page (server-rendered, no scripts)", html_page, "<!doctype html>...", media="text/html"),
            description="Popularity per item type and window; every published model version with held-out NDCG@100 "
                        "against popularity and a chart of it over time; projector positions and lag; the log's size, "
                        "this process's request, append and rejection counters and their per-minute rates.",
            errors=("401",), security=_OPTIONAL_KEY)},
        "/dashboard/users": {"get": _redirect(
            "getDashboardUserForm", "The dashboard's user form: redirects to /dashboard/users/{user_id}", "dashboard",
            [{"name": "user_id", "in": "query", "required": False, "schema": {"type": "string"}, "example": "u1",
              "description": "the user to explore; empty: back to /dashboard"}])},
        "/dashboard/users/{user_id}": {"get": _operation(
            "getDashboardUser", "Dashboard of one user: history and every published model's recommendations", "dashboard",
            _ok("An HTML page (server-rendered, no scripts)", html_page, "<!doctype html>...", media="text/html"),
            description="The user's history, the recommendations of each published model side by side and the "
                        "popularity fallback.",
            parameters=path("user_id"), errors=("401",), security=_OPTIONAL_KEY)},
    }
    paths.update(_collection_paths(settings, path, ref))
    paths.update(experiment_paths(_operation, _ok, ref, _OPTIONAL_KEY))
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "MovieAugur",
            "version": "1",
            "description": "Event-sourced recommendations: write interactions, read popularity and recommendations.\n\n"
                           "Every response carries `X-Request-Id` (sent back when the request gives a valid one). "
                           "Errors are JSON objects with an `error` line; a 400 adds `details`, a 409 `index` and `event_id`.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "tags": [
            {"name": "commands", "description": "Writes: appended to the event log, applied to the views by projectors"},
            {"name": "queries", "description": "Reads from the views"},
            {"name": "operations", "description": "Health, readiness and metrics"},
            {"name": "docs", "description": "This document, the docs page and the home page"},
            {"name": "dashboard", "description": "HTML pages for people: what the system knows and how it is doing"},
        ],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": _error_responses(max_body_bytes),
            "headers": {"X-Request-Id": {
                "description": "Names this request in the server's logs (the client's own when it sent a valid one)",
                "schema": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"},
            }},
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key",
                                           "description": "MOVIEAUGUR_API_KEYS for writes; MOVIEAUGUR_READ_API_KEYS (or a write key) for reads when set"}},
        },
    }


# -- the docs page, its files, and the home page -----------------------------------------------

#: The files of the docs page, by name under /docs/static/, and their content types. All but
#: INIT_SCRIPT are Swagger UI's own files as the swagger-ui-py package ships them.
INIT_SCRIPT = "movieaugur-docs.js"
_ASSETS: dict[str, str] = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
    INIT_SCRIPT: "text/javascript",
}
_INIT_JS = """\
// Starts Swagger UI on the spec this server serves (no validator badge: it would call an outside service).
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    displayRequestDuration: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
});
"""


def swagger_ui_dir() -> Path | None:
    """Where the installed swagger-ui-py package keeps Swagger UI's files (found without importing
    the package, whose import pulls in its framework integrations); None if it is not installed."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        return None
    static = Path(next(iter(spec.submodule_search_locations))) / "static"
    return static if (static / "swagger-ui-bundle.js").is_file() else None


def _operations_table(spec: dict[str, Any]) -> str:
    rows = []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            params = ", ".join(p["name"] + ("" if p["in"] == "path" else "?") for p in op["parameters"])
            rows.append(
                f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}</code></td>"
                f"<td>{html.escape(op['summary'])}</td><td>{html.escape(params)}</td></tr>"
            )
    return "<table><tr><th>method</th><th>path</th><th>what</th><th>parameters</th></tr>" + "".join(rows) + "</table>"


def render_docs(spec: dict[str, Any], interactive: bool = True) -> str:
    """The /docs page: Swagger UI from local files, and the plain table of operations for a browser
    without JavaScript (or all of the page, if Swagger UI's files are not installed)."""
    intro = (
        "<h1>MovieAugur API</h1><p>Machine-readable: <a href='/openapi.json'>/openapi.json</a>. "
        "Writes under /v1 take an <code>X-API-Key</code> header when keys are configured.</p>"
    )
    head = "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>MovieAugur API</title>"
    plain_style = "<style>body{font-family:sans-serif;margin:2em}td{padding:4px 12px;border-bottom:1px solid #ddd}</style>"
    if not interactive:
        return head + plain_style + "</head><body>" + intro + _operations_table(spec) + "</body></html>"
    return (
        head
        + f"<link rel='stylesheet' href='{DOCS_STATIC}/swagger-ui.css'>"
        + f"<link rel='icon' type='image/png' href='{DOCS_STATIC}/favicon-32x32.png' sizes='32x32'>"
        + f"<link rel='icon' type='image/png' href='{DOCS_STATIC}/favicon-16x16.png' sizes='16x16'>"
        + "</head><body><div id='swagger-ui'></div>"
        + "<noscript>" + plain_style + intro + _operations_table(spec) + "</noscript>"
        + f"<script src='{DOCS_STATIC}/swagger-ui-bundle.js' charset='utf-8'></script>"
        + f"<script src='{DOCS_STATIC}/{INIT_SCRIPT}' charset='utf-8'></script>"
        + "</body></html>"
    )


def render_home(spec: dict[str, Any]) -> str:
    """The / page: what this is and where to go."""
    links = [
        ("/docs", "API docs", "try every endpoint in the browser"),
        ("/dashboard", "Dashboard", "what the system is doing"),
        ("/openapi.json", "OpenAPI document", "for client generators"),
        ("/healthz", "Health", "liveness"),
        ("/readyz", "Readiness", "are the event log and the views reachable"),
        ("/metrics", "Metrics", "Prometheus"),
    ]
    items = "".join(
        f"<li><a href='{href}'>{html.escape(name)}</a> <span>{html.escape(what)}</span></li>" for href, name, what in links
    )
    description = html.escape(spec["info"]["description"].split("\n", 1)[0])
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>MovieAugur</title>"
        "<style>body{font-family:sans-serif;margin:2em;max-width:50em}li{margin:.4em 0}span{color:#555}</style>"
        f"</head><body><h1>MovieAugur</h1><p>{description}</p><ul>{items}</ul></body></html>"
    )


def add_docs_routes(app: web.Application, spec: dict[str, Any]) -> None:
    """GET /openapi.json, /docs, /docs/static/{name} and /."""
    static = swagger_ui_dir()
    if static is None:
        log.warning("swagger-ui-py is not installed: /docs shows a plain table of the operations")
    docs_page = render_docs(spec, interactive=static is not None)
    home_page = render_home(spec)
    init_js = _INIT_JS.encode()

    async def openapi(_: web.Request) -> web.Response:
        return json_response(spec)

    async def docs(_: web.Request) -> web.Response:
        return web.Response(text=docs_page, content_type="text/html")

    async def asset(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        content_type = _ASSETS.get(name)
        if content_type is None or static is None:
            raise web.HTTPNotFound(reason="no such file of the docs page")
        headers = {"Content-Type": content_type, "Cache-Control": "public, max-age=86400"}
        if name == INIT_SCRIPT:
            return web.Response(body=init_js, headers=headers)
        return web.FileResponse(static / name, headers=headers)

    async def home(_: web.Request) -> web.Response:
        return web.Response(text=home_page, content_type="text/html")

    app.router.add_get("/openapi.json", openapi)
    app.router.add_get("/docs", docs)
    app.router.add_get(DOCS_STATIC + "/{name}", asset)
    app.router.add_get("/", home)
