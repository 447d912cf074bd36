"""Per-request context: who asked, what was done. Filled by the server and the engine."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from breakwater.core.types import Usage
from breakwater.engine.accounting import Tally

if TYPE_CHECKING:  # quota.py imports this module
    from breakwater.core.keys import Team, VirtualKey
    from breakwater.engine.guardrails.dlp import DlpPlan
    from breakwater.engine.limits.quota import Ticket
    from breakwater.engine.trim.stage import Trimmed

#: ``(deployment, provider, upstream model, start_mono, end_mono, error class name or None)``: a
#: plain tuple so recording an attempt costs one allocation on the request path
Attempt = tuple[str, str, str, float, float, str | None]


@dataclass(slots=True)
class Caller:
    """Who is asking. Owner: the server (from the headers), then the access stage (the key)."""

    #: the caller, from ``x-breakwater-user`` (the OpenAI ``user`` field is the fallback): the
    #: unit of fairness when requests queue for a deployment
    user: str | None = None
    #: free-form attribution (feature, environment, experiment) from ``x-breakwater-tags``
    tags: dict[str, str] = field(default_factory=dict)
    #: the virtual key that authenticated the request, by id
    key_id: str | None = None
    #: the credential the client sent (``Authorization: Bearer``, ``x-api-key`` or ``api-key``);
    #: cleared as soon as it has been checked, so nothing downstream can log it
    credential: str | None = None
    #: the authenticated key and its team (``None`` with access control off)
    key: VirtualKey | None = None
    team: Team | None = None
    #: an agent session (``x-breakwater-session``), capped by ``access.sessions``
    session: str | None = None
    #: ``x-mock-*`` headers from the client, forwarded to mock deployments only
    mock_headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SpentCall:
    """An upstream call that was paid for but did not answer the request."""

    deployment: str
    provider: str
    upstream_model: str
    usage: Usage


@dataclass(frozen=True, slots=True)
class Baseline:
    """What a branching route's savings are counted against (docs/routing.md, "Saved by
    routing"): its baseline branch, priced at that branch's first deployment."""

    branch: str
    deployment: str
    provider: str
    upstream_model: str


@dataclass(slots=True)
class RouteOutcome:
    """What the engine did with the request. Owner: the engine's calls (``engine/calls``)."""

    route: str | None = None
    deployment: str | None = None
    provider: str | None = None
    #: the upstream model name of the deployment that served (its reported name lands in ``tally``)
    upstream_model: str | None = None
    #: the region of that deployment (data residency; ``None``: it declares none)
    region: str | None = None
    attempts: int = 0
    #: served by a deployment other than the route's first choice, or by a fallback route
    fallback: bool = False
    #: the fallback route that served the request, when one did
    fallback_route: str | None = None
    dropped_params: list[str] = field(default_factory=list)
    #: seconds spent waiting on upstreams, backoff and queues: the request's time minus this is
    #: the gateway's own overhead (``x-breakwater-overhead-ms``)
    waited_s: float = 0.0
    #: one ``Attempt`` per upstream call, in order: traces are built from these after the request
    attempt_log: list[Attempt] = field(default_factory=list)
    #: the branch of a branching route that answered (``x-breakwater-route-branch``), and why it
    #: was chosen (``rule 2 (tools)``, ``learned 0.81 >= 0.70``, ``default``, a cascade's steps)
    branch: str | None = None
    decision: str | None = None
    #: a branching route's baseline, for what its choice saved (the ledger's ``routing_saved_usd``)
    baseline: Baseline | None = None
    #: the variant (arm) of a route with variants that took the request (``x-breakwater-variant``)
    variant: str | None = None
    #: a cascade's steps asked (``x-breakwater-cascade-steps``)
    cascade_steps: int = 0
    #: calls made before the one that answered (a cascade's escalated steps, its judge): the
    #: caller pays for them too, so the ledger row adds their tokens and cost
    earlier: list[SpentCall] = field(default_factory=list)
    #: a shadow call (engine/shadow/): the request id of the call it mirrors, and how its answer
    #: compared with that call's (the same text, after case and spacing; embedding similarity)
    shadow_of: str | None = None
    shadow_exact: bool | None = None
    shadow_similarity: float | None = None


@dataclass(slots=True)
class LimitState:
    """What the request holds against its limits. Owner: the limits (``engine/limits``) and the gatekeeper."""

    #: what the request reserved against its limits, settled when it ends (``engine/limits/quota.py``)
    ticket: Ticket | None = None
    #: ``x-ratelimit-*`` headers for the response, whatever its status
    rate_headers: list[tuple[bytes, bytes]] = field(default_factory=list)


@dataclass(slots=True)
class TraceContext:
    """W3C trace context of the request. Owner: the server (from ``traceparent``)."""

    #: W3C trace context: the caller's (``traceparent``) or a fresh random id; 0 means none
    trace_id: int = 0
    #: the caller's span (from ``traceparent``): the gateway's server span becomes its child
    parent_span_id: int | None = None
    #: the caller's sampling decision (``traceparent`` flags); True when there was no caller span
    sampled: bool = True


#: ``CacheOutcome.status`` values of an answer that came from the cache
SERVED = frozenset({"hit", "semantic-hit", "stale"})


@dataclass(slots=True)
class CacheOutcome:
    """What the answer cache did with the request. Owner: the cache stage (``engine/cache``).

    ``status`` is what ``x-breakwater-cache`` says: ``hit`` (served from the cache),
    ``semantic-hit`` (the answer to a similar question, ``similarity`` says how similar), ``stale``
    (served from an expired entry because every upstream failed), ``miss`` (looked up, not
    found; the answer may be stored) or ``bypass`` (the request does not qualify, or asked not
    to be looked up).
    """

    status: str
    #: seconds since the served entry was stored (hits)
    age_s: float | None = None
    #: the call a served entry saved: who answered it first, and what it used then
    deployment: str = ""
    provider: str = ""
    upstream_model: str = ""
    usage: Usage | None = None
    #: semantic hits: the cosine similarity of the two questions
    similarity: float | None = None

    @property
    def served(self) -> bool:
        """The answer came from the cache, not from an upstream."""
        return self.status in SERVED


#: the outcomes with nothing but a status, shared by every request that has them (never changed)
CACHE_MISS = CacheOutcome("miss")
CACHE_BYPASS = CacheOutcome("bypass")


@dataclass(slots=True)
class RequestContext:
    """Travels with one request through the engine.

    Each part has one owner: the server and the access stage fill ``caller`` and ``trace``, the
    engine records what it did in ``outcome`` (which the server turns into ``x-breakwater-*``
    response headers), the limits keep ``limits``, accounting fills ``tally``; observability
    later turns it all into the ledger row.
    """

    request_id: str
    caller: Caller = field(default_factory=Caller)
    outcome: RouteOutcome = field(default_factory=RouteOutcome)
    limits: LimitState = field(default_factory=LimitState)
    trace: TraceContext = field(default_factory=TraceContext)
    #: usage, finish reason and first-event time, filled as the answer passes
    tally: Tally = field(default_factory=Tally)
    #: wall-clock time the request arrived (unix seconds) and the monotonic time that matches it
    started_at: float = 0.0
    started_mono: float = 0.0
    stream: bool = False
    #: the ``x-breakwater-cache`` request header, as sent (the cache stage reads it)
    cache_header: str | None = None
    #: the request's headers as received (lower-case names; the routing rules read them)
    headers: Sequence[tuple[bytes, bytes]] = ()
    #: what the answer cache did (``None``: the route does not cache)
    cache: CacheOutcome | None = None
    #: a prompt version chosen by a stage before the prompts stage (a variants arm), as
    #: ``(name, version)``: it replaces the prompt the request or its route names (docs/prompts.md)
    prompt_choice: tuple[str, int] | None = None
    #: the prompt rendered for the request, ``(name, version)``; set by the prompts stage once the
    #: version is known (a request whose variables are refused has it too): the ledger's
    #: ``prompt_name`` / ``prompt_version``, ``x-breakwater-prompt``
    prompt: tuple[str, int] | None = None
    #: the answer was a refusal (``engine/refusals``): ``None`` when nothing was checked (no
    #: answer, or the detector is off)
    refused: bool | None = None
    #: what the output checks found and did (``engine/guardrails/output_stage.py``), as
    #: ``check:action`` (``canary:blocked``, ``schema:repaired``): the ledger's ``output_flags``
    output_flags: list[str] | None = None
    #: the prompt-injection check (``engine/guardrails/injection_stage.py``): the highest score of
    #: the scored messages (``None``: not checked), and the action taken when it reached the
    #: route's threshold (``logged``, ``flagged``, ``blocked``)
    injection_score: float | None = None
    injection_action: str | None = None
    #: personal data and secrets found in the request, and what each deployment may receive
    #: (``engine/guardrails/dlp.py``; ``None``: nothing found, or no policy applies)
    dlp: DlpPlan | None = None
    #: what the history trimmer removed (``engine/trim/stage.py``; ``None``: nothing): the
    #: ledger's ``trimmed_messages``, ``trimmed_tokens``, ``trim_summary``
    trimmed: Trimmed | None = None
    #: the regions the request's upstream calls may go to (data residency, ``core/regions.py``):
    #: the key's, the team's and the route's restrictions met, set by the access stage; ``None``:
    #: anywhere. Every side call made for the request (shadow, judges, embedder, summariser)
    #: carries it over
    regions: frozenset[str] | None = None


def charge_unanswered(ctx: RequestContext, usage: Usage | None) -> None:
    """The call that just answered was paid for without answering the request (a cascade step
    that failed its checks, an answer asked again by the output checks): the ledger row charges it."""
    o = ctx.outcome
    o.earlier.append(SpentCall(o.deployment or "", o.provider or "", o.upstream_model or "", usage or Usage()))


def fresh_tally(ctx: RequestContext) -> None:
    """Forget the last call's tally (its cost is in ``earlier``); the next call tallies afresh."""
    capture = ctx.tally.capture
    ctx.tally = Tally()
    ctx.tally.capture = capture
