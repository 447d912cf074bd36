"""Strings and numbers valid against a JSON schema's scalar keywords, for the mock's structured output.

``schema_instance`` walks the schema and picks the type; a ``string`` or ``number``/``integer``
is built here. Strings honour ``format`` (date, date-time, time, email, uri, uuid, hostname,
ipv4, ipv6, duration), ``pattern`` (through ``regex_instance``) and ``min|maxLength``; numbers
honour ``minimum``/``maximum``, ``exclusiveMinimum``/``exclusiveMaximum`` in both drafts'
spellings and ``multipleOf``. Deterministic: the same schema and seed give the same value.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Mapping
from typing import Any

from breakwater.infra.mock.regex_instance import string_matching

#: words the mock writes with, in its prose and in generated strings
WORDS = (
    "mock", "river", "signal", "harbor", "lantern", "quartz", "meadow", "orbit", "cedar", "pixel",
    "breeze", "copper", "delta", "ember", "falcon", "glacier", "horizon", "island", "jasmine", "kernel",
    "lattice", "marble", "nectar", "onyx", "prairie", "quiver", "ripple", "summit", "timber", "umbra",
    "velvet", "willow", "zephyr", "anchor", "beacon", "canyon", "dune", "echo", "fjord", "grove",
    "haven", "indigo", "juniper", "kelp", "lagoon", "mosaic", "nimbus", "opal", "pebble", "quill",
    "reef", "saffron", "tundra", "upland", "vortex", "wharf", "yarrow", "zenith", "amber", "birch",
    "cobalt", "drift", "estuary", "fern",
)  # fmt: skip

# a schema may ask for a longer string than any model would write; past this the request is
# refused (400) rather than the mock spending its memory on it
_MAX_LENGTH = 100_000
_FORMATS = {
    "date": "2024-01-15",
    "date-time": "2024-01-15T10:30:00Z",
    "time": "10:30:00Z",
    "email": "mock@example.com",
    "idn-email": "mock@example.com",
    "uri": "https://example.com/mock",
    "iri": "https://example.com/mock",
    "uri-reference": "https://example.com/mock",
    "hostname": "example.com",
    "idn-hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "duration": "P1D",
}


def count_keyword(schema: Mapping[str, Any], key: str) -> int | None:
    """A count keyword (``minLength``, ``maxItems``, ``minProperties``...): a non-negative integer, else ``None``."""
    value = schema.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


# --- strings ------------------------------------------------------------------------------


def string_for(schema: Mapping[str, Any], seed: int) -> str:
    """A string for ``schema``: its ``format``'s example (else a word), fitted to ``pattern`` and the lengths."""
    fmt = schema.get("format")
    if fmt == "uuid":
        digits = f"{zlib.crc32(str(seed).encode()):08x}{seed:08x}{seed * 7919 & 0xFFFFFFFF:08x}{seed ^ 0x5BD1E995:08x}"
        value = f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-8{digits[17:20]}-{digits[20:32]}"
    elif isinstance(fmt, str) and fmt in _FORMATS:
        value = _FORMATS[fmt]
    else:
        value = WORDS[seed % len(WORDS)]
    pattern = schema.get("pattern")
    if isinstance(pattern, str) and not _search(pattern, value):
        value = string_matching(pattern, seed) or value
    lo = count_keyword(schema, "minLength")
    hi = count_keyword(schema, "maxLength")
    if lo is not None and lo > _MAX_LENGTH:
        raise ValueError(f"minLength {lo} is longer than the mock writes (at most {_MAX_LENGTH})")
    if lo is not None and len(value) < lo:
        value = (value + " " + " ".join(WORDS[seed % 8 :]))[:lo].ljust(lo, "x")
    if hi is not None and len(value) > hi:
        value = value[:hi]
    return value


def _search(pattern: str, value: str) -> bool:
    try:
        return re.search(pattern, value) is not None
    except re.error:
        return True  # a pattern Python cannot compile: nothing better to offer than the default


# --- numbers ------------------------------------------------------------------------------


def number_for(schema: Mapping[str, Any], seed: int, *, integer: bool) -> int | float:
    """A number (an ``int`` when ``integer``) inside the bounds and a multiple of ``multipleOf``.

    Raises:
        OverflowError: bounds near the float limit, or a ``multipleOf`` near zero.
    """
    lo, lo_open = _bound(schema, "minimum", "exclusiveMinimum")
    hi, hi_open = _bound(schema, "maximum", "exclusiveMaximum")
    step = schema.get("multipleOf")
    step = step if isinstance(step, (int, float)) and not isinstance(step, bool) and step > 0 else None
    # a seed-chosen value from 1..100 when the bounds allow it, else one inside the bounds; a
    # "number" gets a fraction so that oneOf [integer, number] can tell the branches apart
    value = float(1 + seed % 100) + (0 if integer else 0.5)
    if not _inside(value, lo, lo_open, hi, hi_open):
        if lo is not None and hi is not None:
            value = (lo + hi) / 2
        elif lo is not None:
            value = lo + 1 if lo_open else lo
        elif hi is not None:
            value = hi - 1 if hi_open else hi
    if integer:
        value = _int_in(value, lo, lo_open, hi, hi_open)
    if step is not None:
        return _multiple(value, step, lo, lo_open, hi, hi_open, integer)
    return int(value) if integer else value


def _inside(v: float, lo: float | None, lo_open: bool, hi: float | None, hi_open: bool) -> bool:
    if lo is not None and (v < lo or (lo_open and v <= lo)):
        return False
    return not (hi is not None and (v > hi or (hi_open and v >= hi)))


def _bound(schema: Mapping[str, Any], inclusive: str, exclusive: str) -> tuple[float | None, bool]:
    """(bound, open?) from draft-6+ numeric ``exclusive*`` or draft-4 boolean ``exclusive*``."""
    inc = _real(schema.get(inclusive))
    flag = schema.get(exclusive)
    if isinstance(flag, bool):
        return inc, flag and inc is not None
    exc = _real(flag)
    # both given: the tighter one wins
    if exc is not None and (inc is None or (exc >= inc if inclusive == "minimum" else exc <= inc)):
        return exc, True
    return inc, False


def _real(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _int_in(value: float, lo: float | None, lo_open: bool, hi: float | None, hi_open: bool) -> int:
    n = math.ceil(value)
    if lo is not None:
        n = max(n, math.floor(lo) + 1 if lo_open else math.ceil(lo))
    if hi is not None and (n > hi or (hi_open and n >= hi)):
        n = math.ceil(hi) - 1 if hi_open else math.floor(hi)
    return n


def _multiple(
    value: float, step: float, lo: float | None, lo_open: bool, hi: float | None, hi_open: bool, integer: bool
) -> int | float:
    start = math.ceil(value / step)
    first = math.ceil(lo / step) if lo is not None else start
    for k in (start, *range(first, first + 64)):
        candidate: int | float = k * step
        if candidate == int(candidate):
            candidate = int(candidate)
        elif integer:
            continue
        # the check jsonschema makes: the quotient must be a whole number in float arithmetic
        quotient = candidate / step
        if quotient == int(quotient) and _inside(candidate, lo, lo_open, hi, hi_open):
            return candidate
    return int(value) if integer else value
