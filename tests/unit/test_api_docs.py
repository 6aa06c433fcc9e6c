"""The OpenAPI document, the /docs page and the / page (movieaugur/openapi.py).

The document must describe exactly the routes the app registers, be valid OpenAPI 3.1, carry
examples that validate against their own schemas, and describe the error shapes the server
really sends. The docs page must load only files the app itself serves."""

from __future__ import annotations

import re
import time
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

from aiohttp.test_utils import TestClient, TestServer
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from movieaugur.app import create_app

METHODS = ("get", "put", "post", "delete", "patch")
JS = {"text/javascript", "application/javascript"}


async def spec_of(client: TestClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status == 200 and response.content_type == "application/json"
    spec: dict[str, Any] = await response.json()
    return spec


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, item in spec["paths"].items() for method, op in item.items() if method in METHODS]


def resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node and len(node) == 1:
        target: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def check_example(spec: dict[str, Any], schema: dict[str, Any], example: Any, where: str) -> None:
    """`example` validates against `schema`, whose $refs point into the document."""
    errors = list(Draft202012Validator({**schema, "components": spec["components"]}).iter_errors(example))
    assert not errors, f"{where}: example does not match its schema: {errors[0].message}"


async def test_every_route_is_documented_and_nothing_else(client: TestClient) -> None:
    spec = await spec_of(client)
    registered = {
        (route.method.lower(), route.resource.canonical)
        for route in client.server.app.router.routes()
        if route.method != "HEAD" and route.resource is not None  # HEAD: aiohttp's twin of each GET
    }
    documented = {(method, path) for path, method, _ in operations(spec)}
    assert registered - documented == set(), "routes missing from /openapi.json"
    assert documented - registered == set(), "documented routes the app does not have"
    for expected in ("/v1/events", "/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/"):
        assert expected in spec["paths"]


async def test_spec_is_valid_openapi_31_with_examples_that_match(client: TestClient) -> None:
    spec = await spec_of(client)
    assert spec["openapi"] == "3.1.0"
    validate(spec, cls=OpenAPIV31SpecValidator)

    ids = [op["operationId"] for _, _, op in operations(spec)]
    assert len(ids) == len(set(ids))
    for path, method, op in operations(spec):
        where = f"{method.upper()} {path}"
        if "requestBody" in op:
            body = op["requestBody"]["content"]["application/json"]
            assert "example" in body, f"{where}: no request example"
            check_example(spec, body["schema"], body["example"], where + " request")
        for parameter in op["parameters"]:
            if "example" in parameter:
                check_example(spec, parameter["schema"], parameter["example"], f"{where} parameter {parameter['name']}")
        for status, response in op["responses"].items():
            response = resolve(spec, response)
            assert "X-Request-Id" in response.get("headers", {}), f"{where} {status}: X-Request-Id not documented"
            for media, content in response.get("content", {}).items():
                if media == "application/json":
                    assert "example" in content, f"{where} {status}: no example"
                    check_example(spec, content["schema"], content["example"], f"{where} {status}")


async def test_error_shapes_are_documented_where_they_happen(client: TestClient, container) -> None:  # type: ignore[no-untyped-def]
    spec = await spec_of(client)

    def response(path: str, method: str, status: str) -> dict[str, Any]:
        return resolve(spec, spec["paths"][path][method]["responses"][status])

    def schema(path: str, method: str, status: str) -> dict[str, Any]:
        return resolve(spec, response(path, method, status)["content"]["application/json"]["schema"])

    for status in ("200", "400", "401", "409", "413", "503", "500"):
        assert status in spec["paths"]["/v1/events"]["post"]["responses"]
    assert "details" in schema("/v1/events", "post", "400")["properties"]
    assert {"error", "index", "event_id"} <= set(schema("/v1/events", "post", "409")["required"])
    assert schema("/v1/events", "post", "413")["required"] == ["error"]
    for path, method in [("/v1/items/{item_type}/{item_id}", "get"), ("/v1/users/{user_id}/recommendations", "get"),
                         ("/v1/popularity/{item_type}", "get"), ("/v1/models/{name}", "get")]:
        assert {"401", "404"} <= set(spec["paths"][path][method]["responses"]), path
    assert "503" in spec["paths"]["/readyz"]["get"]["responses"]
    assert spec["paths"]["/v1/events"]["post"]["security"] == [{"apiKey": []}]
    assert spec["paths"]["/docs"]["get"]["security"] == []

    # And the server answers in those shapes.
    now = int(time.time()) - 60
    fact = {"event_id": "e1", "user_id": "u", "item_id": "m1", "item_type": "movie", "timestamp": now}
    await client.post("/v1/events", json=[fact])
    answers = {
        "400": await client.post("/v1/events", json=[fact, {**fact, "event_id": "e2", "action": "purchase"}]),
        "409": await client.post("/v1/events", json=[{**fact, "item_id": "m2"}]),
        "413": await client.post("/v1/events", data=b"[" + b" " * container.settings.max_body_bytes + b"]"),
    }
    for status, answer in answers.items():
        assert str(answer.status) == status and answer.headers["X-Request-Id"]
        check_example(spec, schema("/v1/events", "post", status), await answer.json(), f"live {status}")
    assert (await answers["400"].json())["details"][0]["index"] == 1
    missing = await client.get("/v1/items/movie/nothing")
    assert missing.status == 404
    check_example(spec, schema("/v1/items/{item_type}/{item_id}", "get", "404"), await missing.json(), "live 404")


async def test_unauthorized_shape(container) -> None:  # type: ignore[no-untyped-def]
    container.settings = container.settings.model_copy(update={"api_keys": ("k",)})
    async with TestClient(TestServer(create_app(container))) as keyed:
        spec = await spec_of(keyed)  # the docs stay open
        answer = await keyed.post("/v1/events", json=[])
        assert answer.status == 401
        documented = resolve(spec, spec["paths"]["/v1/events"]["post"]["responses"]["401"])
        check_example(spec, documented["content"]["application/json"]["schema"], await answer.json(), "live 401")
        assert (await keyed.get("/docs")).status == 200


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str, str]] = []  # (tag, rel, url)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("src", "href"):
            if values.get(name):
                self.found.append((tag, values.get("rel") or "", str(values[name])))


def local(url: str) -> bool:
    parts = urlsplit(url)
    return not parts.scheme and not parts.netloc


async def test_docs_page_loads_only_local_files(client: TestClient) -> None:
    page = await client.get("/docs")
    assert page.status == 200 and page.content_type == "text/html"
    text = await page.text()
    assert "http://" not in text and "https://" not in text and "//" not in text.replace("<!doctype", "")
    parser = Links()
    parser.feed(text)
    assert all(local(url) for _, _, url in parser.found), parser.found
    scripts = [url for tag, _, url in parser.found if tag == "script"]
    styles = [url for tag, rel, url in parser.found if tag == "link" and rel == "stylesheet"]
    icons = [url for tag, rel, url in parser.found if tag == "link" and rel == "icon"]
    assert scripts and styles
    assert "/v1/events" in text  # the operations, also without JavaScript (<noscript>)

    for url in scripts + styles + icons:
        asset = await client.get(url)
        assert asset.status == 200, url
        body = await asset.read()
        assert body and asset.headers["X-Request-Id"]
        if url in scripts:
            assert asset.content_type in JS, (url, asset.content_type)
            assert b"https://" not in body or url.endswith("swagger-ui-bundle.js"), url
        elif url in styles:
            assert asset.content_type == "text/css", (url, asset.content_type)
            # No fonts or images from elsewhere: every url(...) in the stylesheet is inline data.
            assert all(u.startswith(("data:", '"data:', "'data:")) for u in re.findall(r"url\(([^)]*)\)", body.decode())), url
        else:
            assert asset.content_type == "image/png"

    bundle = await (await client.get("/docs/static/swagger-ui-bundle.js")).text()
    version = re.search(r'PACKAGE_VERSION:"(\d+)\.', bundle)
    assert version and int(version.group(1)) >= 5, "Swagger UI 5 or later is needed to render OpenAPI 3.1"
    init = await (await client.get("/docs/static/movieaugur-docs.js")).text()
    assert '"/openapi.json"' in init and "validatorUrl: null" in init  # no call to an outside validator

    assert (await client.get("/docs/static/swagger-ui.js.map")).status == 404  # only the listed files
    assert (await client.get("/docs/static/..%2F__init__.py")).status == 404


async def test_home_page_links_the_docs_and_the_dashboard(client: TestClient) -> None:
    page = await client.get("/")
    assert page.status == 200 and page.content_type == "text/html" and page.headers["X-Request-Id"]
    parser = Links()
    parser.feed(await page.text())
    hrefs = {url for tag, _, url in parser.found if tag == "a"}
    assert {"/docs", "/dashboard", "/openapi.json"} <= hrefs
    assert all(local(url) for url in hrefs)
