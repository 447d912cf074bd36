"""The eval targets (``engine/evals/target.Target``): the gateway's engine in-process
(``breakwater:ROUTE``) and any OpenAI-compatible server (``openai:chat:MODEL`` with an
``apiBaseUrl``: a running Breakwater, vLLM, OpenAI itself).

In-process, a case goes through the whole request pipeline of the configuration (access, variants,
prompts, cache, router, ...) over ASGI, as a client's request would, and its cost is the one its
ledger row records (cascade steps and judges included; a cache hit costs nothing). Over HTTP the
cost is unknown (a ``cost`` assertion on it fails, saying so).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from breakwater.core.types import ChatRequest, ChatResponse, Choice, Message, TextPart
from breakwater.engine.evals.target import Reply, Target, output_of
from breakwater.engine.router.checks import JudgeCall
from breakwater.providers.openai import chat_body

if TYPE_CHECKING:
    import aiohttp
    import httpx2

    from breakwater.observability.ledger.row import LedgerRow
    from breakwater.server.app import BreakwaterApp

#: a case that takes longer than this fails with a timeout (the gateway's own timeouts come first)
DEFAULT_TIMEOUT_S = 300.0


def _reply(body: Mapping[str, Any], status: int, raw: bytes, latency_ms: float, cost: float | None) -> Reply:
    try:
        answer = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return Reply(None, f"HTTP {status}: the answer is not JSON", status)
    if not isinstance(answer, dict):
        return Reply(None, f"HTTP {status}: the answer is not a JSON object", status)
    if status >= 400:
        error = answer.get("error")
        message = error.get("message") if isinstance(error, dict) else None
        return Reply(None, f"HTTP {status}: {message or 'error'}", status)
    output = output_of(body, answer, latency_ms=latency_ms, cost_usd=cost)
    model = answer.get("model")
    return Reply(output, None, status, model if isinstance(model, str) else None)


class GatewayTarget:
    """A route of a configuration, served by the gateway's engine in this process.

    Args:
        app: the gateway (``server.app.create_app``), started by ``open`` and stopped by ``aclose``.
        route: the route (``model``) every case is sent to.
    """

    def __init__(self, app: BreakwaterApp, route: str, *, headers: Mapping[str, str] | None = None) -> None:
        self.app = app
        self.route = route
        self.label = f"breakwater:{route}"
        self.headers = dict(headers or {})
        self._rows: dict[str, LedgerRow] = {}
        self._client: httpx2.AsyncClient | None = None
        self._owner = False

    async def open(self, *, start: bool = True) -> GatewayTarget:
        """Start the gateway (``start``: when no other target of the same app did) and watch its rows."""
        import httpx2

        if start:
            await self.app.startup()
            self._owner = True
        recording = next(s for s in self.app.runtimes.current.pipeline.stages if s.name == "recording")
        recording.recorder.also(self._keep)  # type: ignore[attr-defined]
        self._client = httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=self.app), base_url="http://breakwater", timeout=DEFAULT_TIMEOUT_S
        )
        return self

    def _keep(self, row: LedgerRow) -> None:
        self._rows[row.request_id] = row

    async def ask(self, body: Mapping[str, Any]) -> Reply:
        assert self._client is not None, "open() first"
        sent = {**body, "model": self.route}
        started = time.perf_counter()
        response = await self._client.post(
            "/v1/chat/completions",
            content=orjson.dumps(sent),
            headers={"content-type": "application/json", **self.headers},
        )
        latency_ms = (time.perf_counter() - started) * 1000
        row = self._rows.pop(response.headers.get("x-request-id", ""), None)
        cost = None if row is None or row.cost_usd is None else float(row.cost_usd)
        return _reply(sent, response.status_code, response.content, latency_ms, cost)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        if self._owner:
            await self.app.shutdown()
            self._owner = False


class HttpTarget:
    """A model of an OpenAI-compatible server (``POST {base_url}/chat/completions``).

    Args:
        model: the ``model`` every case names.
        base_url: the server's API root, e.g. ``http://127.0.0.1:4000/v1``.
        api_key: sent as a bearer token, when given.
    """

    def __init__(
        self,
        model: str,
        base_url: str,
        api_key: str | None = None,
        *,
        label: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.model = model
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.label = label or f"openai:chat:{model}"
        self._headers = {"content-type": "application/json", **(headers or {})}
        if api_key:
            self._headers["authorization"] = f"Bearer {api_key}"
        self._session: aiohttp.ClientSession | None = None

    async def ask(self, body: Mapping[str, Any]) -> Reply:
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=DEFAULT_TIMEOUT_S))
        sent = {**body, "model": self.model}
        started = time.perf_counter()
        try:
            async with self._session.post(self.url, data=orjson.dumps(sent), headers=self._headers) as response:
                raw = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            return Reply(None, f"{self.url} did not answer: {type(exc).__name__}")
        return _reply(sent, status, raw, (time.perf_counter() - started) * 1000, None)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def judge_on(target: Target) -> JudgeCall:
    """A judge route's call (``model_graded.Graders.judge``) answered by ``target``: the judge's
    canonical request sent as an OpenAI body (``providers/openai.chat_body``), its answer's text
    back as a one-choice response; a target that cannot answer raises (the assertion then fails,
    saying so)."""

    async def call(request: ChatRequest) -> ChatResponse:
        body = chat_body(request, "")
        del body["model"]  # the target names its own
        reply = await target.ask(body)
        if reply.output is None:
            raise JudgeUnavailable(reply.error or "no answer")
        message = Message("assistant", [TextPart(reply.output.text)])
        return ChatResponse(id="", model=reply.model or "", created=0, choices=[Choice(0, message, "stop")])

    return call


class JudgeUnavailable(Exception):
    """The judge's target gave no answer (the message says why)."""
