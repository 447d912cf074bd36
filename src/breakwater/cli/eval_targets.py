"""The eval targets (``engine/evals/target.Target``): the gateway's engine in-process
(``breakwater:ROUTE``) and any OpenAI-compatible server (``openai:chat:MODEL`` with an
``apiBaseUrl``: a running Breakwater, vLLM, OpenAI itself).

In-process, a case goes through the whole request pipeline of the configuration (access, variants,
prompts, cache, router, ...) over ASGI, as a client's request would, and its cost is the one its
ledger row records (cascade steps and judges included; a cache hit costs nothing). Over HTTP the
cost is unknown (a ``cost`` assertion on it fails, saying so).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from breakwater.engine.evals.providers import ProviderSpec, base_url_of
from breakwater.engine.evals.runner import EvalTarget
from breakwater.engine.evals.target import Reply, Target, output_of

if TYPE_CHECKING:
    import aiohttp
    import httpx2

    from breakwater.core.config import Config
    from breakwater.engine.router.checks import JudgeCall
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
    return Reply(output, None, status, model if isinstance(model, str) else None, answer)


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


def config_identity(config: Config) -> str:
    """A configuration's hash: what its routes answer may change with any of it (the cache key)."""
    dumped = orjson.dumps(config.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.sha256(dumped).hexdigest()[:16]


class Targets:
    """The targets of a run (suite providers and judges), each opened once; ``aclose`` closes all.

    Args:
        config: the configuration ``breakwater:ROUTE`` providers are served by (in this process).
        api_key: sent to the in-process gateway when its access control is on.
        environ: where ``openai:chat`` providers' keys and the gateway's ``env:`` references are read.
    """

    def __init__(self, config: Config | None, *, api_key: str | None, environ: Mapping[str, str]) -> None:
        self.config = config
        self.environ = environ
        self._headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._app: BreakwaterApp | None = None
        self._opened: dict[str, EvalTarget] = {}
        self._identity = "" if config is None else config_identity(config)

    @property
    def app(self) -> BreakwaterApp | None:
        return self._app

    async def open(self, spec: ProviderSpec) -> EvalTarget:
        """The target of ``spec`` (opened on first use; ``breakwater:`` ones share one gateway)."""
        key = orjson.dumps([spec.kind, spec.name, spec.base_url, spec.label], default=str).decode()
        if key in self._opened:
            found = self._opened[key]
            return EvalTarget(found.target, spec.params, found.identity)
        if spec.kind == "breakwater":
            if self.config is None:
                raise ValueError(f"{spec.id} needs a configuration (--config FILE)")
            if spec.name not in self.config.routes:
                raise ValueError(f"{spec.id}: the configuration has no route {spec.name!r}")
            from breakwater.server.app import create_app

            first = self._app is None
            if self._app is None:
                self._app = create_app(self.config, environ=self.environ)
            gateway = GatewayTarget(self._app, spec.name, headers=self._headers)
            gateway.label = spec.label
            target: Target = await gateway.open(start=first)
            identity = self._identity
        else:
            base_url = base_url_of(spec, self.environ)
            api_key = self.environ.get(spec.key_env or "") or None
            target = HttpTarget(spec.name, base_url, api_key, label=spec.label)
            identity = base_url
        opened = EvalTarget(target, spec.params, identity)
        self._opened[key] = opened
        return opened

    async def aclose(self) -> None:
        # the gateway's owner (the first in-process target) last: it stops the app
        for opened in reversed(list(self._opened.values())):
            await opened.target.aclose()
        self._opened.clear()


def judge_of(target: Target, params: Mapping[str, Any] | None = None) -> JudgeCall:
    """A judge route's call over a target: the request as an OpenAI body (``params``, the judge
    provider's ``config``, over it), the answer read back.

    Raises (from the call): ``JudgeFailed`` when the target gives no answer.
    """
    from breakwater.core.types import ChatRequest, ChatResponse
    from breakwater.providers.openai import chat_body, chat_completion

    async def call(request: ChatRequest) -> ChatResponse:
        body = {**chat_body(request, ""), **(params or {})}
        del body["model"]
        reply = await target.ask(body)
        if reply.answer is None:
            raise JudgeFailed(reply.error or "no answer")
        return chat_completion(dict(reply.answer), b"", reply.model or "")

    return call


class JudgeFailed(Exception):
    """The judge's target gave no answer (the assertion fails, saying so)."""
