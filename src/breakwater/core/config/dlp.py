"""The ``dlp`` setting of a route and of a provider: what happens to personal data and secrets
found in a request (docs/guardrails.md, "Data-loss prevention")."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from breakwater.core.config.base import _Model
from breakwater.core.detectors import Kind

#: ``allow``: nothing; ``log``: counted only; ``redact``: a typed placeholder (``[EMAIL]``);
#: ``mask``: a numbered placeholder (``[EMAIL_1]``) the answer gets back as the original value;
#: ``block``: a 400 naming the kind
Action = Literal["allow", "log", "redact", "mask", "block"]


class RouteDlp(_Model):
    """``routes.X.dlp``: the data-loss policy for requests on the route."""

    #: the action for every kind not in ``kinds``
    action: Action = "log"
    #: an action per kind (``email``, ``phone``, ``card``, ``iban``, ``ssn``, ``nino``, ``dni``,
    #: ``cpf``, ``ip``, ``secret``, ``token``)
    kinds: dict[Kind, Action] = Field(default_factory=dict)


class ProviderDlp(_Model):
    """``providers.X.dlp``: what the provider's deployments may receive, over the route's policy.

    A self-hosted provider may be given raw data (``action: allow``) where an external one gets
    it redacted. ``block`` here refuses the request once it would reach this provider.
    """

    #: the action for every kind not in ``kinds`` (``None``: the route's)
    action: Action | None = None
    kinds: dict[Kind, Action] = Field(default_factory=dict)
