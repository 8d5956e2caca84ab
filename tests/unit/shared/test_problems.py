"""shared.problems: one RFC 9457 machinery for every HTTP app, each with its own map of domain errors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from functions.api.app import create_app as create_api_app
from shared.problems import INTERNAL, PROBLEM_MEDIA_TYPE, Extras, ProblemMap, ProblemType, install, problem_doc


class ShopError(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class OutOfStock(ShopError):
    pass


class Backorder(OutOfStock):
    pass


class Discontinued(OutOfStock):
    pass


class WarehouseDown(ShopError):
    pass


class StoreConnectionError(ConnectionError):
    """A foreign error without a public `detail`: its text may name hosts."""


class StoreTimeoutError(TimeoutError):
    """A foreign error after which the outcome is unknown: its problem type says so."""


SHOP_ERROR = ProblemType(400, "shop-error", "Shop error")
OUT_OF_STOCK = ProblemType(409, "out-of-stock", "Out of stock")
DISCONTINUED = ProblemType(410, "discontinued", "Discontinued")
WAREHOUSE_DOWN = ProblemType(503, "warehouse-down", "Warehouse unavailable")
STORE_DOWN = ProblemType(503, "store-unavailable", "Data store unavailable")
STORE_SLOW = ProblemType(503, "store-timeout", "Data store too slow", detail="the outcome is unknown: repeat it")


def _extras(exc: Exception) -> Extras:
    if isinstance(exc, OutOfStock):
        return Extras(headers={"X-Restock": "tomorrow"}, members={"sku": "A-1"})
    return Extras()


SHOP = ProblemMap(
    {
        ShopError: SHOP_ERROR,
        OutOfStock: OUT_OF_STOCK,
        Discontinued: DISCONTINUED,
        WarehouseDown: WAREHOUSE_DOWN,
        StoreConnectionError: STORE_DOWN,
        StoreTimeoutError: STORE_SLOW,
    },
    _extras,
)


class Order(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: str = Field(min_length=3)
    quantity: int = Field(gt=0)


def shop_app() -> FastAPI:
    app = FastAPI()
    install(app, SHOP)
    failures: dict[str, Exception] = {
        "backorder": Backorder("A-1 ships in a week"),
        "warehouse": WarehouseDown("the warehouse did not answer; post the order again"),
        "store": StoreConnectionError("Error 111 connecting to 10.0.3.7:6379"),
        "slow-store": StoreTimeoutError("Timeout reading from 10.0.3.7:6379"),
        "bug": RuntimeError("secret internals"),
    }

    @app.post("/orders", status_code=201)
    async def order(body: Order) -> dict[str, str]:
        return {"sku": body.sku}

    @app.get("/fail/{what}")
    async def fail(what: str) -> None:
        raise failures[what]

    return app


@pytest.fixture
async def shop() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=shop_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop") as http:
        yield http


def problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body: dict[str, object] = response.json()
    assert body["status"] == status and str(body["type"]).startswith("/problems/") and body["title"]
    return body


def test_errors_are_mapped_along_the_mro_to_the_nearest_mapped_class() -> None:
    # Given a map with a base class, a subclass and a sub-subclass of it
    cases = {
        ShopError("x"): SHOP_ERROR,
        OutOfStock("x"): OUT_OF_STOCK,
        Backorder("x"): OUT_OF_STOCK,  # not mapped itself: its parent's
        Discontinued("x"): DISCONTINUED,  # mapped itself: wins over its parent
        StoreConnectionError("x"): STORE_DOWN,
        ConnectionError("x"): INTERNAL,  # only the mapped subclass is known
        KeyError("x"): INTERNAL,
    }
    # Then each error gets its nearest mapped problem type
    assert {repr(e): SHOP.problem_for(e) for e in cases} == {repr(e): kind for e, kind in cases.items()}


async def test_a_domain_error_is_a_problem_with_its_detail_instance_and_extras(shop: httpx.AsyncClient) -> None:
    response = await shop.get("/fail/backorder")
    body = problem(response, 409)
    assert response.headers["x-restock"] == "tomorrow"
    assert body == {
        "type": "/problems/out-of-stock",
        "title": "Out of stock",
        "status": 409,
        "detail": "A-1 ships in a week",
        "instance": "/fail/backorder",
        "sku": "A-1",
    }


async def test_a_backing_service_error_hides_its_text_and_sets_retry_after(shop: httpx.AsyncClient) -> None:
    # When a mapped 5xx without a public detail is raised (its text names a host)
    response = await shop.get("/fail/store")
    # Then the caller is told to come back, and not where the store lives
    body = problem(response, 503)
    assert response.headers["retry-after"] == "5"
    assert body["detail"] == "data store unavailable; nothing changed, try again"
    assert "10.0.3.7" not in response.text


async def test_a_backing_service_timeout_says_the_outcome_is_unknown_instead_of_nothing_changed(
    shop: httpx.AsyncClient,
) -> None:
    # When a mapped 5xx whose problem type carries its own detail is raised
    response = await shop.get("/fail/slow-store")
    # Then the caller reads that detail (not "nothing changed"), still without the host
    body = problem(response, 503)
    assert response.headers["retry-after"] == "5"
    assert body["type"] == "/problems/store-timeout"
    assert body["detail"] == "the outcome is unknown: repeat it"
    assert "10.0.3.7" not in response.text


async def test_a_5xx_domain_error_keeps_its_public_detail_and_sets_retry_after(shop: httpx.AsyncClient) -> None:
    response = await shop.get("/fail/warehouse")
    body = problem(response, 503)
    assert response.headers["retry-after"] == "5"
    assert body["detail"] == "the warehouse did not answer; post the order again"


async def test_a_bug_is_a_500_without_details(shop: httpx.AsyncClient) -> None:
    response = await shop.get("/fail/bug")
    body = problem(response, 500)
    assert body == {
        "type": "/problems/internal",
        "title": "Internal server error",
        "status": 500,
        "instance": "/fail/bug",
    }
    assert "secret internals" not in response.text and "retry-after" not in response.headers


async def test_schema_violations_list_every_field(shop: httpx.AsyncClient) -> None:
    response = await shop.post("/orders", json={"sku": "A", "quantity": 0, "colour": "red"})
    body = problem(response, 422)
    assert body["type"] == "/problems/validation-failed"
    errors = body["errors"]
    assert isinstance(errors, list)
    assert {e["field"] for e in errors} == {"body.sku", "body.quantity", "body.colour"}
    assert all(e["message"] for e in errors)


async def test_routing_errors_are_problems_named_after_their_status(shop: httpx.AsyncClient) -> None:
    assert problem(await shop.get("/nothing"), 404)["type"] == "/problems/not-found"
    assert problem(await shop.delete("/orders"), 405)["type"] == "/problems/method-not-allowed"


async def test_malformed_json_is_a_400_for_the_api() -> None:
    # Given the tenant API (the body is parsed before the key is checked: no Redis needed)
    transport = httpx.ASGITransport(app=create_api_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        # When a body that is not JSON is posted
        response = await http.post("/v1/sessions", content=b'{"name": ', headers={"content-type": "application/json"})
    # Then it is a 400 problem, not a 422
    body = problem(response, 400)
    assert body["type"] == "/problems/malformed-body" and body["instance"] == "/v1/sessions"


def test_documented_problem_responses_are_problem_json() -> None:
    # Given an app that documents a problem response with the model
    app = FastAPI()
    install(app, SHOP)

    @app.get("/thing", responses={409: problem_doc("Out of stock")})
    async def thing() -> dict[str, str]:
        return {}

    # Then the OpenAPI document gives it as application/problem+json only
    content = app.openapi()["paths"]["/thing"]["get"]["responses"]["409"]["content"]
    assert list(content) == [PROBLEM_MEDIA_TYPE]
    assert content[PROBLEM_MEDIA_TYPE]["schema"]["$ref"] == "#/components/schemas/Problem"
