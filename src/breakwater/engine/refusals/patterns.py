"""The shipped refusal patterns, by language: regular expressions, in lower case, searched in an
answer's lower-cased opening (curly apostrophes read as straight ones). Each names the refusal
itself, not an apology alone ("I'm sorry for the confusion" is no refusal). ``refusals.patterns``
in the config replaces a language or adds one.

Each opens with a literal phrase of a few characters: the detector finds it with ``str.find``
and tries the pattern only where it occurs (``detector.py``), so keep a new pattern's opening
literal (no ``\\b`` or group first) and it costs next to nothing.
"""

from __future__ import annotations

_CANT = r"(?:can(?:no|')?t|won't|will not|am unable to|'m unable to|am not able to|'m not able to)"
_WHAT = r"(?:help|assist|provide|comply|fulfil|do that|support|engage|create|share)"

DEFAULT_PATTERNS: dict[str, tuple[str, ...]] = {
    "en": (
        rf"i'm sorry,? (?:but )?i {_CANT}",
        rf"i am sorry,? (?:but )?i {_CANT}",
        rf"i'm afraid,? i {_CANT}",
        rf"i can(?:no|')?t {_WHAT}",
        rf"i won't {_WHAT}",
        rf"i will not {_WHAT}",
        rf"i'm (?:not able|unable) to {_WHAT}",
        rf"i am (?:not able|unable) to {_WHAT}",
        r"i must (?:decline|refuse)",
    ),
    "de": (
        r"ich kann (?:dir |ihnen )?(?:dabei|damit|hierbei|hiermit) nicht helfen",
        r"es tut mir leid, (?:aber )?(?:ich kann|das kann ich) (?:dabei |hier )?nicht",
        r"ich kann (?:diese[rnm]? )?(?:anfrage|bitte) nicht (?:erfüllen|nachkommen|bearbeiten)",
    ),
    "fr": (
        r"je ne (?:peux|suis pas en mesure d[e'] ?) ?(?:pas )?(?:vous |t')?(?:aider|répondre|fournir|faire cela|donner suite)",
        r"désolée?,? (?:mais )?je ne (?:peux|suis pas en mesure)",
    ),
    "es": (
        r"no puedo (?:ayudar|ayudarte|ayudarle|proporcionar|cumplir|hacer eso|asistir)",
        r"lo siento,? (?:pero )?no (?:puedo|me es posible)",
    ),
}
