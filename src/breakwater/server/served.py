"""The handlers of one running configuration: the route table a request is dispatched through
(``Served``), and the chat codecs of the wire formats clients speak."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from breakwater.infra.credentials import resolve
from breakwater.providers import anthropic_serve, anthropic_serve_request, openai_completions_serve, openai_serve
from breakwater.runtime.runtime import Runtime
from breakwater.server import errors
from breakwater.server.admin import Admin, AdminAuth
from breakwater.server.admin_compare import compare_handler
from breakwater.server.admin_drift import drift_handler
from breakwater.server.admin_keys import KeysAdminApi
from breakwater.server.admin_slo import slo_handler
from breakwater.server.asgi import Receive, Scope, Send
from breakwater.server.batches import PATHS, BatchApi
from breakwater.server.config_admin import ConfigAdminApi
from breakwater.server.disconnect import CancelOnDisconnect
from breakwater.server.endpoints import ChatCodec, Endpoints
from breakwater.server.feedback import FeedbackApi
from breakwater.server.moderations import ModerationsApi
from breakwater.server.reload import ReloadApi
from breakwater.server.responses import ResponsesApi
from breakwater.server.token_count import TokenCountApi
from breakwater.server.ui.dashboard import Dashboard

if TYPE_CHECKING:
    from breakwater.server.app import BreakwaterApp

Handler = Callable[[Scope, Receive, Send], Awaitable[None]]


OPENAI = ChatCodec(
    "openai",
    openai_serve.decode_chat_request,
    openai_serve.encode_chat_response,
    openai_serve.StreamEncoder,
    errors.openai_error,
)
ANTHROPIC = ChatCodec(
    "anthropic",
    anthropic_serve_request.decode_chat_request,
    anthropic_serve.encode_chat_response,
    anthropic_serve.StreamEncoder,
    errors.anthropic_error,
)
#: legacy text completions, mapped onto chat (providers/openai_completions_serve.py)
COMPLETIONS = ChatCodec(
    "openai",
    openai_completions_serve.decode_completion_request,
    openai_completions_serve.encode_completion_response,
    openai_completions_serve.CompletionStreamEncoder,
    errors.openai_error,
)


class Served:
    """The handlers of one runtime: the route table a request is dispatched through."""

    def __init__(self, app: BreakwaterApp, runtime: Runtime) -> None:
        self.runtime = runtime
        config = runtime.config
        ep = Endpoints(runtime.pipeline, runtime.router, runtime.process.clock, config.server.max_body_bytes, app.ids)

        async def chat(scope: Scope, receive: Receive, send: Send) -> None:
            await ep.chat(OPENAI, scope, receive, send)

        async def messages(scope: Scope, receive: Receive, send: Send) -> None:
            await ep.chat(ANTHROPIC, scope, receive, send)

        async def completions(scope: Scope, receive: Receive, send: Send) -> None:
            await ep.chat(COMPLETIONS, scope, receive, send)

        # the routes that call upstream: a client that disconnects cancels the call at once
        disconnects = app.disconnects
        guarded_chat = CancelOnDisconnect(chat, app.ids, OPENAI.error, disconnects)
        guarded_embeddings = CancelOnDisconnect(ep.embeddings, app.ids, errors.openai_error, disconnects)
        guarded_completions = CancelOnDisconnect(completions, app.ids, COMPLETIONS.error, disconnects)
        moderations = ModerationsApi(
            runtime.pipeline, runtime.gateway, runtime.process.clock, app.ids, config.server.max_body_bytes
        )
        guarded_moderations = CancelOnDisconnect(moderations, app.ids, errors.openai_error, disconnects)
        counts = TokenCountApi(
            runtime.pipeline, runtime.router, runtime.process.tokenizers, app.ids, config.server.max_body_bytes
        )
        routes: dict[tuple[str, str], Handler] = {}
        for prefix in ("/v1", ""):  # clients configured with or without /v1 in their base URL
            routes[("POST", f"{prefix}/chat/completions")] = guarded_chat
            routes[("POST", f"{prefix}/completions")] = guarded_completions
            routes[("POST", f"{prefix}/moderations")] = guarded_moderations
            routes[("POST", f"{prefix}/embeddings")] = guarded_embeddings
            routes[("GET", f"{prefix}/models")] = ep.models
        routes[("POST", "/v1/messages")] = CancelOnDisconnect(messages, app.ids, ANTHROPIC.error, disconnects)
        routes[("POST", "/v1/messages/count_tokens")] = counts.messages
        routes[("POST", "/v1/tokens/count")] = counts.chat
        self.responses = ResponsesApi(ep, runtime.responses, config.responses.ttl_s)
        guarded_responses = CancelOnDisconnect(self.responses.create, app.ids, errors.openai_error, disconnects)
        for prefix in ("/v1", ""):
            routes[("POST", f"{prefix}/responses")] = guarded_responses
        #: /v1/files and /v1/batches (``None``: ``batches.enabled`` is off)
        self.batches: BatchApi | None = None
        if config.batches.enabled:
            self.batches = BatchApi(ep, runtime.batches, config.batches, app.batch_runner.wake)
            for path in PATHS:
                for method in ("GET", "POST"):
                    routes[(method, path)] = self.batches
        routes[("POST", "/v1/feedback")] = FeedbackApi(
            runtime.pipeline,
            app.ids,
            None if runtime.ledger is None else runtime.ledger.feedback,
            runtime.metrics.requests.observe_feedback,
            config.server.max_body_bytes,
        )
        auth = AdminAuth(
            resolve(config.server.admin_key, runtime.process.environ), open_without_key=not config.access.enabled
        )
        admin = Admin(runtime.gateway, auth, runtime.metrics)
        self.keys = KeysAdminApi(auth, runtime.access.admin, runtime.access.quota, runtime.process.clock.time)
        routes[("GET", "/admin/deployments")] = admin.deployments
        ledger_store = None if runtime.ledger is None else runtime.ledger.store
        routes[("GET", "/admin/usage")] = admin.usage(ledger_store)
        routes[("GET", "/admin/shadow")] = admin.shadow(ledger_store)
        routes[("GET", "/admin/compare")] = compare_handler(
            auth, ledger_store, config.routes, runtime.process.clock.time
        )
        routes[("GET", "/admin/drift")] = drift_handler(auth, runtime.drift)
        routes[("GET", "/admin/slo")] = slo_handler(auth, runtime.slo)
        routes[("POST", "/admin/reload")] = ReloadApi(auth, app.runtimes_of).reload
        self.config_admin = ConfigAdminApi(auth, app.stored, app.runtimes_of, runtime.process)
        for method, path, handler in self.config_admin.routes():
            routes[(method, path)] = handler
        routes[("GET", "/metrics")] = admin.metrics
        self.ui = Dashboard(app.ui, auth, runtime)
        routes[("GET", "/healthz")] = app.healthz
        routes[("GET", "/readyz")] = app.readyz
        self.routes = routes
        self.endpoints = ep
        #: path -> the methods it takes, for a 405's Allow header
        self.methods: dict[str, list[str]] = {}
        for method, path in routes:
            self.methods.setdefault(path, []).append(method)
