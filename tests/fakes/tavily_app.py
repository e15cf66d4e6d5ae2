"""A fake Tavily API server (raw ASGI) for the real `tavily-python` clients.

`TavilyClient` (requests) and `AsyncTavilyClient` (httpx) both take
`api_base_url`; point it at `FakeTavily.base_url`.  As with the OpenAI fake,
`request_id` and `response_time` are fresh on every answer while the content
(titles, urls, snippets, scores, answers) is a pure function of the request.
"""

from __future__ import annotations

import hashlib
import random
import re
import uuid
from dataclasses import dataclass
from typing import Any

from .server import (
    LocalServer,
    OneShotRules,
    Receive,
    RecordedRequest,
    RequestLog,
    RunningFake,
    Scope,
    Send,
    read_request,
    send_json,
)

DEFAULT_MAX_RESULTS = 5
DEFAULT_CRAWL_LIMIT = 3

_DEFAULT_ERROR_MESSAGES = {
    400: "Invalid request (injected by FakeTavily).",
    401: "Unauthorized: missing or invalid API key (injected by FakeTavily).",
    403: "Forbidden (injected by FakeTavily).",
    429: "Your request has been blocked due to excessive requests (injected by FakeTavily).",
    432: "This request exceeds your plan's set usage limit (injected by FakeTavily).",
    433: "This request exceeds the pay-as-you-go limit (injected by FakeTavily).",
}


def fresh_request_id() -> str:
    return str(uuid.uuid4())


def fresh_response_time() -> float:
    """Different on every call, like the real service's wall-clock timing."""
    return round(random.uniform(0.2, 2.5), 2)


def seeded_rng(*parts: Any) -> random.Random:
    return random.Random(hashlib.sha256(repr(parts).encode("utf-8")).digest())


def slugify(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:60] or "query"


class TavilyError(Exception):
    """Raised by handlers to answer with Tavily's `{"detail": {"error": ...}}` shape."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_body(message: str) -> dict[str, Any]:
    return {"detail": {"error": message}}


def require(body: Any, key: str) -> Any:
    if not isinstance(body, dict) or body.get(key) in (None, "", []):
        raise TavilyError(400, f"Missing required field: {key}")
    return body[key]


def positive_int(body: dict[str, Any], key: str, default: int) -> int:
    value = body.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise TavilyError(400, f"Invalid value for {key}")
    return value


def favicon_for(url: str) -> str:
    host = url.split("/")[2] if "://" in url else url
    return f"https://{host}/favicon.ico"


# ---------------------------------------------------------------------------
# Deterministic content.
# ---------------------------------------------------------------------------


def search_results(query: str, count: int, include_raw: Any, include_favicon: bool) -> list[dict[str, Any]]:
    rng = seeded_rng("search", query)
    slug = slugify(query)
    results = []
    score = 0.9 + rng.random() * 0.09
    for index in range(count):
        url = f"https://example{index + 1}.com/{slug}"
        result: dict[str, Any] = {
            "url": url,
            "title": f"{query} - result {index + 1}",
            "content": f"Result {index + 1} about {query}: snippet number {rng.randint(100, 999)}.",
            "score": round(score, 5),
            "raw_content": f"# {query}\n\nFull text of result {index + 1} about {query}." if include_raw else None,
        }
        if include_favicon:
            result["favicon"] = favicon_for(url)
        results.append(result)
        score -= 0.03 + rng.random() * 0.05
    return results


def search_images(query: str, describe: bool) -> list[Any]:
    slug = slugify(query)
    urls = [f"https://images.example.com/{slug}/{index + 1}.jpg" for index in range(2)]
    if describe:
        return [{"url": url, "description": f"Image {i + 1} of {query}"} for i, url in enumerate(urls)]
    return urls


def search_answer(query: str, source_count: int) -> str:
    return f"Answer about {query}: the fake search engine found {source_count} relevant sources."


def search_json(body: Any) -> dict[str, Any]:
    query = require(body, "query")
    count = min(positive_int(body, "max_results", DEFAULT_MAX_RESULTS), 20)
    payload: dict[str, Any] = {
        "query": query,
        "follow_up_questions": None,
        "answer": search_answer(query, count) if body.get("include_answer") else None,
        "images": search_images(query, bool(body.get("include_image_descriptions")))
        if body.get("include_images")
        else [],
        "results": search_results(query, count, body.get("include_raw_content"), bool(body.get("include_favicon"))),
        "response_time": fresh_response_time(),
        "request_id": fresh_request_id(),
    }
    if body.get("auto_parameters"):
        payload["auto_parameters"] = {"topic": body.get("topic", "general"), "search_depth": "basic"}
    if body.get("include_usage"):
        payload["usage"] = {"credits": 2 if body.get("search_depth") == "advanced" else 1}
    return payload


def page_text(url: str, query: str | None = None) -> str:
    focus = f" Focus: {query}." if query else ""
    return f"# Page {url}\n\nDeterministic content of {url}.{focus}"


def extract_json(body: Any) -> dict[str, Any]:
    urls = require(body, "urls")
    urls = [urls] if isinstance(urls, str) else list(urls)
    results, failed = [], []
    for url in urls:
        if "fail" in url or "invalid" in url:
            failed.append({"url": url, "error": "Failed to fetch url"})
            continue
        result: dict[str, Any] = {"url": url, "raw_content": page_text(url, body.get("query")), "images": []}
        if body.get("include_images"):
            result["images"] = [url.rstrip("/") + "/image.png"]
        if body.get("include_favicon"):
            result["favicon"] = favicon_for(url)
        results.append(result)
    payload: dict[str, Any] = {
        "results": results,
        "failed_results": failed,
        "response_time": fresh_response_time(),
        "request_id": fresh_request_id(),
    }
    if body.get("include_usage"):
        payload["usage"] = {"credits": max(1, len(results) // 5)}
    return payload


def site_pages(url: str, limit: int) -> list[str]:
    root = url.rstrip("/")
    return [root] + [f"{root}/page-{index}" for index in range(1, limit)]


def crawl_json(body: Any) -> dict[str, Any]:
    url = require(body, "url")
    limit = max(1, min(positive_int(body, "limit", DEFAULT_CRAWL_LIMIT), 50))
    results = []
    for page in site_pages(url, limit):
        result: dict[str, Any] = {
            "url": page,
            "raw_content": page_text(page, body.get("instructions")),
            "images": [],
        }
        if body.get("include_favicon"):
            result["favicon"] = favicon_for(page)
        results.append(result)
    payload: dict[str, Any] = {
        "base_url": url,
        "results": results,
        "response_time": fresh_response_time(),
        "request_id": fresh_request_id(),
    }
    if body.get("include_usage"):
        payload["usage"] = {"credits": 1}
    return payload


def map_json(body: Any) -> dict[str, Any]:
    url = require(body, "url")
    limit = max(1, min(positive_int(body, "limit", DEFAULT_CRAWL_LIMIT), 50))
    payload: dict[str, Any] = {
        "base_url": url,
        "results": site_pages(url, limit),
        "response_time": fresh_response_time(),
        "request_id": fresh_request_id(),
    }
    if body.get("include_usage"):
        payload["usage"] = {"credits": 1}
    return payload


# ---------------------------------------------------------------------------
# The ASGI app.
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class InjectedFailure:
    status: int
    message: str | None

    def body(self) -> dict[str, Any]:
        return error_body(self.message or _DEFAULT_ERROR_MESSAGES.get(self.status, f"HTTP {self.status} (injected)"))


_ROUTES = {
    "/search": search_json,
    "/extract": extract_json,
    "/crawl": crawl_json,
    "/map": map_json,
}


class TavilyApp:
    """Raw ASGI app answering POST /search, /extract, /crawl and /map."""

    def __init__(self) -> None:
        self.log = RequestLog()
        self.failures = OneShotRules()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = await read_request(scope, receive)
        self.log.append(request)
        failure: InjectedFailure | None = self.failures.take(request.path)
        if failure is not None:
            await send_json(send, failure.status, failure.body())
            return
        try:
            payload = self.dispatch(request)
        except TavilyError as exc:
            await send_json(send, exc.status, error_body(exc.message))
            return
        except Exception as exc:  # a bug in the fake: make it visible in the client's error
            await send_json(send, 500, error_body(f"FakeTavily failed on {request.path}: {exc!r}"))
            return
        await send_json(send, 200, payload)

    def dispatch(self, request: RecordedRequest) -> dict[str, Any]:
        handler = _ROUTES.get(request.path)
        if handler is None or request.method != "POST":
            raise TavilyError(404, f"Not found: {request.method} {request.path}")
        return handler(request.body)


class FakeTavily(RunningFake):
    """A running fake Tavily server: `TavilyClient(api_key=..., api_base_url=fake.base_url)`."""

    api_key = "tvly-test"

    def __init__(self) -> None:
        self.app = TavilyApp()
        self.server = LocalServer(self.app)

    @property
    def base_url(self) -> str:
        """What to pass as `api_base_url=` (no trailing slash, no path)."""
        return self.server.base_url

    def client(self, **kwargs: Any) -> Any:
        """A real `tavily.TavilyClient` pointed here."""
        from tavily import TavilyClient

        return TavilyClient(api_key=kwargs.pop("api_key", self.api_key), api_base_url=self.base_url, **kwargs)

    def async_client(self, **kwargs: Any) -> Any:
        """A real `tavily.AsyncTavilyClient` pointed here."""
        from tavily import AsyncTavilyClient

        return AsyncTavilyClient(api_key=kwargs.pop("api_key", self.api_key), api_base_url=self.base_url, **kwargs)

    def reset(self) -> None:
        """Forget received requests and drop pending failure injections."""
        self.app.log.clear()
        self.app.failures.clear()

    def fail_next(self, status: int, count: int = 1, path: str | None = None, message: str | None = None) -> None:
        """Answer the next `count` requests (to `path`, if given) with `{"detail": {"error": message}}`.

        The clients map 400 -> BadRequestError, 401 -> InvalidAPIKeyError,
        403/432/433 -> ForbiddenError, 429 -> UsageLimitExceededError, and
        anything else to the HTTP library's own status error.
        """
        self.app.failures.add(InjectedFailure(status, message), count, path)
