"""Is a similar question the same question? The check a semantic hit must pass besides similarity.

Small embedding models put "how do I enable 2FA" and "how do I disable 2FA", or "10 EUR to USD"
and "10 USD to EUR", at a cosine above 0.9: they share every word but one, or every word in
another order. So a stored answer is served for a new question only when, on top of the
similarity threshold, none of these differ between the two (each a cheap pass over the words):

- **numbers**: the same numbers, as many times each (``"10"``, ``"2.5"``, ``"1,000"``);
- **negation**: both negated or neither (``not``, ``never``, ``don't``, ``without``, ``non-``, ...);
- **question word**: the same kind of question (``how`` to do something is not ``what`` it is);
- **antonyms**: no word of one question has its opposite in the other (``enable``/``disable``,
  ``buy``/``sell``, ``before``/``after``, ... ``ANTONYMS``);
- **order**: numbers, currencies and units in the same order (``EUR to USD`` is not ``USD to EUR``);
- **identifiers**: the same code identifiers (``snake_case``, ``camelCase``, ``dotted.names``);
- **content words**: the words that carry the question's subject (not function words) mostly
  the same: their overlap (Jaccard, after folding plurals and verb endings) at least
  ``min_overlap``. A named entity swapped for another ("learn Python" / "learn Java") is a
  content word that differs.

``Verifier.check`` returns ``None`` when the questions may share an answer, else the name of
the first rule they fail (for logs, tests and the evaluation script). The default
``min_overlap`` was chosen on one half of the QQP duplicate-question pairs and reported on the
other (docs/caching.md).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*|[$€£¥]")
_NUMBER = re.compile(r"\d")
_CAMEL = re.compile(r"[a-z][A-Z]")


def _words(text: str) -> frozenset[str]:
    """A word list written as one string (it reads better than a list of quoted words)."""
    return frozenset(text.split())


NEGATIONS = _words(
    "not no never none nothing nobody nowhere neither nor without non cannot cant dont doesnt "
    "didnt isnt arent wasnt werent wont wouldnt shouldnt couldnt hasnt havent hadnt mustnt"
)

#: the words that say what kind of answer a question wants
QUESTION_WORDS = _words("what how why who whom whose where when which")

#: words whose swap turns a question into a different one; each pair both ways
ANTONYMS: tuple[tuple[str, str], ...] = (
    ("enable", "disable"), ("enabled", "disabled"), ("on", "off"), ("increase", "decrease"),
    ("increasing", "decreasing"), ("buy", "sell"), ("buying", "selling"), ("before", "after"),
    ("max", "min"), ("maximum", "minimum"), ("best", "worst"), ("more", "less"), ("most", "least"),
    ("add", "remove"), ("start", "stop"), ("open", "close"), ("up", "down"), ("import", "export"),
    ("encrypt", "decrypt"), ("upload", "download"), ("login", "logout"), ("true", "false"),
    ("win", "lose"), ("gain", "lose"), ("gain", "loss"), ("positive", "negative"), ("high", "low"),
    ("higher", "lower"), ("hot", "cold"), ("fast", "slow"), ("faster", "slower"), ("cheap", "expensive"),
    ("good", "bad"), ("better", "worse"), ("pros", "cons"), ("advantages", "disadvantages"),
    ("allow", "deny"), ("accept", "reject"), ("include", "exclude"), ("install", "uninstall"),
    ("connect", "disconnect"), ("lock", "unlock"), ("subscribe", "unsubscribe"), ("push", "pull"),
    ("input", "output"), ("send", "receive"), ("sent", "received"), ("first", "last"),
    ("old", "new"), ("older", "newer"), ("young", "old"), ("male", "female"), ("men", "women"),
    ("man", "woman"), ("boy", "girl"), ("big", "small"), ("bigger", "smaller"), ("large", "small"),
    ("long", "short"), ("longer", "shorter"), ("rich", "poor"), ("legal", "illegal"),
    ("possible", "impossible"), ("safe", "unsafe"), ("public", "private"), ("left", "right"),
    ("north", "south"), ("east", "west"), ("inside", "outside"), ("above", "below"), ("over", "under"),
    ("love", "hate"), ("like", "dislike"), ("agree", "disagree"), ("happy", "sad"), ("easy", "hard"),
    ("easiest", "hardest"), ("easy", "difficult"), ("early", "late"), ("yes", "no"), ("with", "without"),
    ("from", "to"), ("sync", "async"), ("synchronous", "asynchronous"), ("client", "server"),
    ("frontend", "backend"), ("read", "write"), ("get", "set"), ("encode", "decode"),
    ("serialize", "deserialize"), ("compress", "decompress"), ("mount", "unmount"), ("show", "hide"),
)  # fmt: skip

CURRENCIES = _words(
    "usd eur gbp jpy inr cny rmb cad aud chf sek nok dkk brl mxn rub krw btc eth $ € £ ¥ dollar "
    "dollars euro euros pound pounds rupee rupees yen yuan bitcoin"
)
UNITS = _words(
    "kg g mg lb lbs oz km m cm mm mi mile miles ft feet foot inch inches yard yards c f celsius "
    "fahrenheit kelvin l ml liter liters litre litres gallon gallons kb mb gb tb kbps mbps ghz "
    "mhz hz kw kwh w v mph kmh kph second seconds minute minutes hour hours day days week weeks "
    "month months year years"
)

#: function words: they carry no subject, so they do not count for the content-word overlap
STOPWORDS = _words(
    "a an the of to in on at by for from with about as into onto than then so if or and but is "
    "are was were be been being am do does did doing done have has had having i me my mine you "
    "your yours he him his she her hers it its we us our ours they them their theirs this that "
    "these those there here what which who whom whose why how when where can could would should "
    "will shall may might must any some all each every much many more most very just also too get "
    "gets got way ways one ones thing things someone something anyone anything possible really "
    "best good should s t"
)


def _fold(word: str) -> str:
    """A crude stem: plurals and common verb endings folded, so "learns" and "learning" meet "learn"."""
    for suffix in ("ing", "ies", "ed", "es", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


@dataclass(frozen=True, slots=True)
class _Read:
    """What the rules look at in one question."""

    numbers: Counter[str]
    negated: bool
    asks: frozenset[str]
    words: frozenset[str]
    ordered: tuple[str, ...]
    identifiers: frozenset[str]
    content: frozenset[str]


def read(text: str) -> _Read:
    raw = _TOKEN.findall(text.replace("n't", "nt").replace("’", "'"))
    words = [t.lower() for t in raw]
    words = [w.replace(",", "") if _NUMBER.match(w) else w for w in words]  # 1,000 is 1000
    numbers = Counter(w for w in words if _NUMBER.match(w))
    ordered = tuple(w for w in words if _NUMBER.match(w) or w in CURRENCIES or w in UNITS)
    identifiers = frozenset(t for t in raw if "_" in t or "." in t or _CAMEL.search(t))
    content = frozenset(_fold(w) for w in words if w not in STOPWORDS and not _NUMBER.match(w) and len(w) > 1)
    asks = frozenset(w for w in words if w in QUESTION_WORDS)
    negated = any(w in NEGATIONS for w in words)
    return _Read(numbers, negated, asks, frozenset(words), ordered, identifiers, content)


def _antonyms() -> dict[str, frozenset[str]]:
    opposite: dict[str, set[str]] = {}
    for x, y in ANTONYMS:
        opposite.setdefault(x, set()).add(y)
        opposite.setdefault(y, set()).add(x)
    return {k: frozenset(v) for k, v in opposite.items()}


_OPPOSITE = _antonyms()


class Verifier:
    """The rules above, with the content-word overlap a pair must reach.

    Args:
        min_overlap: the least Jaccard overlap of the two questions' content words (0 turns the
            rule off); the other rules have nothing to tune.
    """

    def __init__(self, min_overlap: float = 0.0, same_question_word: bool = False) -> None:
        self.min_overlap = min_overlap
        self.same_question_word = same_question_word

    def check(self, query: str, stored: str) -> str | None:
        """``None`` when ``query`` may be answered with ``stored``'s answer, else the rule it fails."""
        return self.compare(read(query), read(stored))

    def compare(self, q: _Read, s: _Read) -> str | None:
        if q.numbers != s.numbers:
            return "numbers"
        if q.negated != s.negated:
            return "negation"
        if self.same_question_word and q.asks != s.asks:
            return "question word"
        for word in q.words - s.words:
            opposite = _OPPOSITE.get(word)
            if opposite is not None and not opposite.isdisjoint(s.words - q.words):
                return "antonym"
        if q.ordered != s.ordered:
            return "order"
        if q.identifiers != s.identifiers:
            return "identifiers"
        if self.min_overlap > 0:
            union = q.content | s.content
            if union and len(q.content & s.content) / len(union) < self.min_overlap:
                return "content"
        return None
