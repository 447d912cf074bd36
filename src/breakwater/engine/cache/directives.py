"""Cache directives a request sends: ``x-breakwater-cache: no-cache, ttl=60`` (or the body field).

- ``no-cache``: do not serve from the cache (the answer is still stored);
- ``no-store``: do not store this answer;
- ``ttl=SECONDS``: store this answer for that long instead of the route's TTL.

Tokens are comma-separated and case-insensitive. Anything else is a 400 naming the directive,
so a typo is never silently ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

from breakwater.core.config.cache import MAX_TTL_S
from breakwater.core.errors import InvalidRequest

#: the request header; the body field is ``breakwater_cache`` (``providers/openai_serve.CACHE_FIELD``)
HEADER = "x-breakwater-cache"


@dataclass(frozen=True, slots=True)
class Directives:
    no_cache: bool = False
    no_store: bool = False
    ttl_s: float | None = None


NONE = Directives()


def parse_directives(*values: str | None) -> Directives:
    """The directives of the header and the body field together.

    Raises:
        InvalidRequest: an unknown directive, or a ``ttl`` that is not a positive number of
            seconds up to 30 days.
    """
    if not any(values):
        return NONE
    no_cache = no_store = False
    ttl: float | None = None
    for value in values:
        for token in (value or "").split(","):
            token = token.strip().lower()
            if not token:
                continue
            if token == "no-cache":
                no_cache = True
            elif token == "no-store":
                no_store = True
            elif token.startswith("ttl="):
                ttl = _ttl(token[4:])
            else:
                raise InvalidRequest(
                    f"{HEADER}: unknown directive {token!r}; expected no-cache, no-store or ttl=SECONDS", param=HEADER
                )
    return Directives(no_cache, no_store, ttl)


def _ttl(text: str) -> float:
    try:
        ttl = float(text)
    except ValueError:
        ttl = -1.0
    if not 0 < ttl <= MAX_TTL_S:  # also refuses nan and inf
        raise InvalidRequest(f"{HEADER}: ttl must be a number of seconds above 0 and up to {MAX_TTL_S}", param=HEADER)
    return ttl
