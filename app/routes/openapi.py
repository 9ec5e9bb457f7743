"""The API's contract: the one error body, the statuses each route documents, and the docs
page (Swagger UI, served from static/vendor/ so that it works offline).

Every 4xx and 5xx the app sends is `ErrorBody` (app.main renders every error). A route lists
the statuses it can answer with `errors(...)`; every operation also documents `EVERY_ROUTE`
(refusals made before a route is reached). FastAPI's own 422 body (`HTTPValidationError`) is
never sent, so the schema drops it: a route that can answer 422 says so itself.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from app.templating import render

Responses = dict[int | str, dict[str, Any]]

SWAGGER_UI = "vendor/swagger-ui-dist-5.36.0"  # under static/, see static/vendor/README.md
FASTAPI_VALIDATION_ERROR = "#/components/schemas/HTTPValidationError"


class ProblemOut(BaseModel):
    """One problem of a question: where, and what (app.errors.Problem)."""

    field: str = Field(description="Dotted path, e.g. `choices.1.mistake`; `(file)`: all.")
    message: str
    line: int | None = Field(
        default=None, description="Line of the YAML, when it came from a file and is known."
    )


class ErrorBody(BaseModel):
    """Every error the API answers (4xx and 5xx)."""

    model_config = ConfigDict(extra="forbid")  # app.main builds every error body with it

    detail: str = Field(description="What went wrong, in a sentence meant for people.")
    field: str | None = Field(
        default=None, description="The part of the request at fault (`answer`, `body`, …)."
    )
    errors: list[ProblemOut] | None = Field(
        default=None, description="A rejected question: every problem found, by field."
    )


# What each status means for this API, unless a route says more precisely.
MEANINGS: dict[int, str] = {
    400: "The Host header names no host this server answers to.",
    401: "No session and no valid API token.",
    403: "Not yours to do (for JSON writes: sent from another site's page).",
    404: "Nothing here has that name or number (or it is not yours).",
    408: "The body came too slowly.",
    409: "The thing is not in a state that allows this.",
    413: "The body is larger than this route takes.",
    415: "Not sent as JSON: send `Content-Type: application/json`.",
    422: "The input cannot be right; `field` names which part.",
    429: "Too many at once (new guests from this address, or runs): see Retry-After.",
    503: "The server (its requests, database or code runner) is busy: see Retry-After.",
}


def errors(*statuses: int, **described: str) -> Responses:
    """Documented error responses, all with `ErrorBody`: `errors(404, s409="Finished.")`
    documents 404 as in MEANINGS and 409 with its own description."""
    chosen = {status: MEANINGS[status] for status in statuses}
    chosen.update({int(key.removeprefix("s")): text for key, text in described.items()})
    return {status: {"model": ErrorBody, "description": text} for status, text in chosen.items()}


# Refused before any route: a wrong Host, a body too large or too slow, a full server.
EVERY_ROUTE = errors(400, 408, 413, 503)
# JSON writes (app.deps.require_json_request): the content type, the origin, the body, and
# a guest's first write makes their learner row (limited per address).
JSON_WRITE = errors(403, 415, 422, 429)
STAFF = errors(401, s403="The account is not an instructor.")
RUNS_CODE = errors(
    s429="This client's runs are over their share of the code runner: see Retry-After.",
    s503="The code runner is busy or unavailable: see Retry-After.",
)


class JsonIn(BaseModel):
    """A JSON request body: a key it does not take is refused (422, naming it), not ignored
    — a misspelt optional key would otherwise do nothing, silently. The schema says so
    (`additionalProperties: false`)."""

    model_config = ConfigDict(extra="forbid")


class NoInput(JsonIn):
    """An empty JSON object: the call needs no input, but writes are sent as JSON."""


def no_input(body: Annotated[NoInput, Body()]) -> None:
    """Accept only `{}` as the body of a write that takes no input (documented as such)."""


NoInputDep = Depends(no_input)


def openapi_schema(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document, built once: FastAPI's, without the 422 body it never
    sends (HTTPValidationError)."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            description=app.description,
            routes=app.routes,
        )
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.get("responses", {})
                if _is_fastapi_422(responses.get("422")):
                    del responses["422"]
        components = schema.get("components", {}).get("schemas", {})
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        app.openapi_schema = schema
    return app.openapi_schema


def documented_methods(app: FastAPI, path: str) -> str | None:
    """The methods the API documents at `path`, for a 405's Allow header (None: not an API
    address).

    Starlette names the methods of the first route whose path matched, and
    `/api/questions/validate` also fits `/api/questions/{question_id}`: the resource is
    the documented path with the fewest parameters that fits, with all its methods.
    """
    fitting = [
        (template.count("{"), operations)
        for template, operations in app.openapi()["paths"].items()
        if re.fullmatch(_path_pattern(template), path)
    ]
    if not fitting:
        return None
    _, operations = min(fitting, key=lambda found: found[0])
    return ", ".join(sorted(method.upper() for method in operations))


def _path_pattern(template: str) -> str:
    """`/api/tests/{exam_id}` → a regular expression matching its addresses."""
    return "[^/]+".join(re.escape(part) for part in re.split(r"\{[^}]+\}", template))


def _is_fastapi_422(response: dict[str, Any] | None) -> bool:
    if response is None:
        return False
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return bool(schema.get("$ref") == FASTAPI_VALIDATION_ERROR)


router = APIRouter(include_in_schema=False)


@router.get("/docs", name="swagger_ui_html")
def swagger_ui(request: Request) -> Response:
    """The interactive API docs, from vendored Swagger UI: no CDN, so they work offline. The
    page finds the description at `url_for('openapi')` (FastAPI's route), under the root path."""
    return render(request, "openapi/docs.html", {"swagger_ui": SWAGGER_UI})
