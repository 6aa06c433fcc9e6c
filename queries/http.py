"""The read API over HTTP: the older GET routes exactly as before, and the /v1 reads."""

from __future__ import annotations

from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from kernel.errors import describe
from kernel.http import Handler, Metrics, error_response, json_response
from projections import popularity as popularity_view
from projections.changes import ViewRebuilding
from queries.answers import AnswerCache
from queries.collections import CollectionQueries
from queries.experiments import ExperimentQueries
from queries.exposures import ExposureRecorder
from queries.params import (
    ArrivalsParams,
    LegacyListParams,
    ListParams,
    NoParams,
    PopularityParams,
    RecommendationParams,
    SimilarParams,
)
from queries.popularity import BadWindow
from queries.service import NotFound, QueryService, Ranked

SERVICE = web.AppKey("query_service", QueryService)
COLLECTIONS = web.AppKey("collection_queries", CollectionQueries)
EXPERIMENTS = web.AppKey("experiment_queries", ExperimentQueries)
METRICS = web.AppKey("query_metrics", Metrics)
ANSWERS = web.AppKey("view_only_answers", AnswerCache)
#: What the popularity routes read besides the catalog (the interaction counts, external lists).
POPULARITY_SPACES = (popularity_view.SPACE, popularity_view.EXTERNAL_SPACE)
P = TypeVar("P", bound=BaseModel)


class BadParams(Exception):
    def __init__(self, body: dict):
        self.body = body


def params(request: web.Request, model: type[P]) -> P:
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as error:
        body = describe(error)
        body["error"] = body["error"].replace("body: ", "query: ", 1)
        raise BadParams(body) from error


@web.middleware
async def read_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except NotFound as missing:
        return error_response(404, str(missing))
    except BadParams as bad:
        return json_response(bad.body, status=400)
    except BadWindow as bad:
        return error_response(400, str(bad))
    except ViewRebuilding as rebuilding:  # its store lost it: partial data would be wrong data
        response = error_response(503, str(rebuilding), rebuilding=rebuilding.projection)
        response.headers["Retry-After"] = "1"
        return response


def _v1(ranked: Ranked, **fields: object) -> dict:
    body: dict = {**fields}
    if ranked.model is not None:
        body.update(model=ranked.model, model_version=ranked.model_version, fallback=ranked.fallback)
    body.update(ranked.extra)
    body["items"] = ranked.items
    return body


# -- the older contract ------------------------------------------------------------------------


async def legacy_popularity(request: web.Request) -> web.Response:
    query = params(request, LegacyListParams)
    object_type = request.match_info["object_type"]

    async def build() -> object:
        return await request.app[SERVICE].legacy_popularity(object_type, query.limit)

    return await request.app[ANSWERS].json(("popularity", object_type, query.model_dump_json()), POPULARITY_SPACES, build)


async def legacy_recommendations(request: web.Request) -> web.Response:
    query = params(request, LegacyListParams)
    service = request.app[SERVICE]
    ranked = await service.recommendations(
        request.match_info["user_id"], model=request.match_info["model_name"], limit=query.limit
    )
    headers = {"X-Model": ranked.model or "", "X-Model-Version": ranked.model_version or ""}
    if ranked.fallback:
        request.app[METRICS].fallbacks.inc()
        headers["X-Recommendation-Fallback"] = ranked.fallback
    return json_response(ranked.items, headers=headers)


# -- /v1 ---------------------------------------------------------------------------------------


async def popularity(request: web.Request) -> web.Response:
    q = params(request, PopularityParams)
    item_type = request.match_info["item_type"]

    async def build() -> object:
        ranked = await request.app[SERVICE].popularity(
            item_type, q.window, q.limit, q.offset, q.category, q.at, q.decay, q.source
        )
        window = q.window or request.app[SERVICE].settings.default_window
        return _v1(ranked, item_type=item_type, window=window, offset=q.offset)

    return await request.app[ANSWERS].json(("v1/popularity", item_type, q.model_dump_json()), POPULARITY_SPACES, build)


async def recommendations(request: web.Request) -> web.Response:
    q = params(request, RecommendationParams)
    user_id = request.match_info["user_id"]
    ranked, served = await request.app[EXPERIMENTS].recommend(
        user_id, q.experiment, q.model, q.item_type, q.limit, q.exclude
    )
    if ranked.fallback:
        request.app[METRICS].fallbacks.inc()
    return json_response(_v1(ranked, user_id=user_id, **served))


async def experiments(request: web.Request) -> web.Response:
    params(request, NoParams)
    return json_response({"experiments": await request.app[EXPERIMENTS].report()})


async def item(request: web.Request) -> web.Response:
    params(request, NoParams)
    found = await request.app[SERVICE].item(request.match_info["item_type"], request.match_info["item_id"])
    return json_response(found)


async def similar(request: web.Request) -> web.Response:
    q = params(request, SimilarParams)
    ranked = await request.app[SERVICE].similar(
        request.match_info["item_type"], request.match_info["item_id"], q.model, q.limit, q.item_type
    )
    return json_response(_v1(ranked, item_type=request.match_info["item_type"], item_id=request.match_info["item_id"]))


async def history(request: web.Request) -> web.Response:
    q = params(request, ListParams)
    items = await request.app[SERVICE].history(request.match_info["user_id"], q.limit, q.offset)
    return json_response({"user_id": request.match_info["user_id"], "items": items})


async def models(request: web.Request) -> web.Response:
    params(request, NoParams)
    return json_response({"models": await request.app[SERVICE].models()})


async def model(request: web.Request) -> web.Response:
    params(request, NoParams)
    name = request.match_info["name"]
    doc = await request.app[SERVICE].model(name)
    if doc is None:
        raise NotFound(f"no published model {name!r}; GET /v1/models lists them")
    return json_response(doc)


async def item_types(request: web.Request) -> web.Response:
    params(request, NoParams)
    return json_response({"item_types": list(request.app[SERVICE].registry.names)})


# -- lists, new arrivals, notifications ---------------------------------------------------------


async def user_lists(request: web.Request) -> web.Response:
    params(request, NoParams)
    user_id = request.match_info["user_id"]
    return json_response({"user_id": user_id, "lists": await request.app[COLLECTIONS].lists(user_id)})


async def user_list(request: web.Request) -> web.Response:
    q = params(request, ListParams)
    user_id, name = request.match_info["user_id"], request.match_info["list_name"]
    items = await request.app[COLLECTIONS].list_items(user_id, name, q.limit, q.offset)
    effect = request.app[SERVICE].settings.list_effect(name)
    return json_response({"user_id": user_id, "list": name, "effect": effect, "offset": q.offset, "items": items})


async def new_arrivals(request: web.Request) -> web.Response:
    q = params(request, ArrivalsParams)
    item_type = request.match_info["item_type"]
    items = await request.app[COLLECTIONS].new_arrivals(item_type, q.category, q.limit, q.offset)
    return json_response({"item_type": item_type, "category": q.category, "offset": q.offset, "items": items})


async def notifications(request: web.Request) -> web.Response:
    q = params(request, ListParams)
    user_id = request.match_info["user_id"]
    found = await request.app[COLLECTIONS].notifications(user_id, q.limit, q.offset)
    return json_response({"user_id": user_id, "offset": q.offset, "notifications": found})


def add_query_routes(
    app: web.Application, service: QueryService, metrics: Metrics, exposures: ExposureRecorder | None = None
) -> None:
    """`exposures`: where lists served in an experiment are queued for the log (None: not recorded)."""
    app[SERVICE] = service
    app[ANSWERS] = AnswerCache(service.revision)
    app[COLLECTIONS] = CollectionQueries(service)
    app[METRICS] = metrics
    app[EXPERIMENTS] = ExperimentQueries(service, exposures, metrics.registry)
    metrics.before_scrape.append(app[EXPERIMENTS].refresh_metrics)
    add = app.router.add_get
    add("/popularity/{object_type}", legacy_popularity)
    add("/recommendations/{model_name}/users/{user_id}", legacy_recommendations)
    add("/v1/popularity/{item_type}", popularity)
    add("/v1/users/{user_id}/recommendations", recommendations)
    add("/v1/users/{user_id}/history", history)
    add("/v1/items/{item_type}/{item_id}", item)
    add("/v1/items/{item_type}/{item_id}/similar", similar)
    add("/v1/models", models)
    add("/v1/experiments", experiments)
    add("/v1/models/{name}", model)
    add("/v1/item-types", item_types)
    add("/v1/users/{user_id}/lists", user_lists)
    add("/v1/users/{user_id}/lists/{list_name}", user_list)
    add("/v1/users/{user_id}/notifications", notifications)
    add("/v1/new-arrivals/{item_type}", new_arrivals)
