"""The ``responses`` section: where ``POST /v1/responses`` keeps responses for
``previous_response_id``, and for how long (docs/api.md, "Responses")."""

from __future__ import annotations

from pydantic import Field, field_validator

from breakwater.core.config.base import _database_url, _Model


class ResponsesSettings(_Model):
    """Stored responses (``store`` not false in the request body)."""

    #: ``memory`` (this process only), ``sqlite:///path``, ``postgresql://...`` or a reference to
    #: one; unset: the key store's database (``access.store``), or memory with access control off
    store: str | None = None
    #: seconds a stored response can be continued or read (OpenAI keeps them 30 days)
    ttl_s: int = Field(default=30 * 86_400, ge=60)
    #: the most responses the memory store keeps (the oldest go first)
    max_memory_records: int = Field(default=10_000, ge=1)

    @field_validator("store")
    @classmethod
    def _known_scheme(cls, value: str | None) -> str | None:
        return value if value is None or value == "memory" else _database_url(value)
