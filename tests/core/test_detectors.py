"""The shared detector set: each kind's true positives, its near misses, Unicode and encoded variants."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from breakwater.core.detectors import KINDS, Finding, fold, replace, scan


def _kinds(text: str) -> list[str]:
    return [f.kind for f in scan(text)]


def _found(text: str) -> list[tuple[str, str]]:
    return [(f.kind, text[f.start : f.end]) for f in scan(text)]


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("mail jane.doe+x@mail.example.org now", "email", "jane.doe+x@mail.example.org"),
        ("card 4111 1111 1111 1111 ok", "card", "4111 1111 1111 1111"),
        ("amex 378282246310005", "card", "378282246310005"),
        ("iban DE89 3704 0044 0532 0130 00 ok", "iban", "DE89 3704 0044 0532 0130 00"),
        ("iban GB82WEST12345698765432", "iban", "GB82WEST12345698765432"),
        ("iban NL91 ABNA 0417 1643 00.", "iban", "NL91 ABNA 0417 1643 00"),
        ("ssn 078-05-1120", "ssn", "078-05-1120"),
        ("NI number AB 12 34 56 C", "nino", "AB 12 34 56 C"),
        ("DNI 12345678Z", "dni", "12345678Z"),
        ("NIE X1234567L", "dni", "X1234567L"),
        ("CPF 111.444.777-35", "cpf", "111.444.777-35"),
        ("CPF 52998224725", "cpf", "52998224725"),
        ("call +44 20 7946 0958", "phone", "+44 20 7946 0958"),
        ("call +4915123456789", "phone", "+4915123456789"),
        ("call (415) 555-0100", "phone", "(415) 555-0100"),
        ("host 10.0.12.7 down", "ip", "10.0.12.7"),
        ("host 2001:db8:85a3::8a2e:370:7334 down", "ip", "2001:db8:85a3::8a2e:370:7334"),
        ("key sk-proj-abcDEF1234567890", "secret", "sk-proj-abcDEF1234567890"),
        ("stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc", "secret", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
        ("aws AKIAIOSFODNN7EXAMPLE", "secret", "AKIAIOSFODNN7EXAMPLE"),
        ("slack xoxb-123456789012-abcdefghij", "secret", "xoxb-123456789012-abcdefghij"),
        ("gcp AIzaSyA1234567890abcdefghijklmnop", "secret", "AIzaSyA1234567890abcdefghijklmnop"),
        (
            "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N",
            "secret",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N",
        ),
        ("aws secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "token", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ],
)
def test_each_detector_finds_its_kind(text: str, kind: str, value: str) -> None:
    """Each kind's common shape is found, with the exact span."""
    assert _found(text) == [(kind, value)]


def test_a_private_key_block_is_one_secret() -> None:
    """A PEM private key is found whole, across its lines."""
    pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----"
    assert _found(f"key:\n{pem}\nend") == [("secret", pem)]


@pytest.mark.parametrize(
    "text",
    [
        "order 4111 1111 1111 1112 shipped",  # fails Luhn
        "iban DE88 3704 0044 0532 0130 00",  # fails mod-97
        "iban GB83WEST12345698765432",  # wrong check digits
        "ssn 000-12-3456 and 666-12-3456 and 900-12-3456",  # areas never issued
        "DNI 12345678A",  # wrong check letter
        "CPF 111.444.777-36 and 11111111111",  # wrong check digit; all one digit
        "NI number BG 12 34 56 C",  # a prefix never issued
        "random 8302 1947 5521 0386 and 73920184",  # random digits
        "version 1.2.3 costs 12 dollars on 2026-11-23 at 12:30:45",
        "C++ std::vector and Haskell x :: Int",
        "git 3f786850e387550fdab836ed7e6dc881de23001b",  # a hex digest is not a token
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "antidisestablishmentarianismantidisestablishment",
        "",
    ],
)
def test_near_misses_are_not_findings(text: str) -> None:
    """Checksums, issuing rules and entropy keep look-alikes out."""
    assert scan(text) == []


def test_unicode_variants_are_found_in_the_original_text() -> None:
    """Fullwidth digits and at-signs, Unicode dashes and spaces: found, with offsets into the text as written."""
    text = "card ４１１１ １１１１ １１１１ １１１１, mail jane＠example．com, ssn 078‐05‐1120"
    assert _found(text) == [
        ("card", "４１１１ １１１１ １１１１ １１１１"),
        ("email", "jane＠example．com"),
        ("ssn", "078‐05‐1120"),
    ]
    assert fold("ａ＠ｂ") == "a@b" and len(fold(text)) == len(text)


def test_encoded_variants_are_found() -> None:
    """A percent-encoded at-sign still makes an address; digits of another script still make a card."""
    assert _found("to jane.doe%40example.com") == [("email", "jane.doe%40example.com")]
    arabic_indic = "٤١١١١١١١١١١١١١١١"  # 4111111111111111 in Arabic-Indic digits
    assert _kinds(f"card {arabic_indic}") == ["card"]


def test_an_overlap_goes_to_the_earlier_kind() -> None:
    """A JWT's digits are not a phone number; an IBAN's are not a card."""
    assert _kinds("GB82WEST12345698765432 and eyJ12345678.eyJ12345678.abcdefgh12") == ["iban", "secret"]


def test_replace_puts_placeholders_over_the_spans() -> None:
    """``replace`` rewrites each span and keeps the rest."""
    text = "a@b.io and 10.0.0.1"
    assert replace(text, scan(text), lambda f: f"<{f.kind}>") == "<email> and <ip>"


def test_kinds_can_be_chosen() -> None:
    """Only the kinds asked for are looked for."""
    assert scan("a@b.io 10.0.0.1", ("ip",)) == [Finding("ip", 7, 15)]


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=300) | st.from_regex(r"[\d @.:+()A-Z-]{0,60}"))
def test_no_input_raises_and_findings_are_sorted_disjoint_spans(text: str) -> None:
    """Any text: no exception, spans within the text, sorted, never overlapping, known kinds."""
    findings = scan(text)
    at = 0
    for f in findings:
        assert f.kind in KINDS and at <= f.start < f.end <= len(text)
        at = f.end


SHAPES = [
    "jane.doe@example.com", "4111 1111 1111 1111", "4111 1111 1111 1112", "+44 20 7946 0958", "(415) 555-2671",
    "DE89 3704 0044 0532 0130 00", "123-45-6789", "AB 12 34 56 C", "12345678Z", "111.444.777-35", "10.0.0.1",
    "fe80::1:2:3", "sk-abcdefghijklmnop", "Bearer abc.def-123", "AKIAABCDEFGHIJKLMNOP", "2026-11-23", "v2.3.1",
    "#48213", "12:30:45", "x", "the", "\u00a0", "\u2003", "\u3000", "\n", "\t", "\x85", "-", ".", "@", "%40", "\uff14",
    "\u0664\u0665\u0666", "eyJhbGciOi.eyJzdWIiOiIx.c2lnbmF0dXJl", "\uff4a\uff41\uff4e\uff45\uff20\uff45\uff58.com",
    "\uff14\uff11\uff11\uff11 1111\u00a01111\u20131111", "415\u2014555\u20142671", "\uff21\uff22 12 34 56 C", "\u2212", "\ufe6b", "-----BEGIN RSA PRIVATE KEY-----", "-----END RSA PRIVATE KEY-----",
]  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.sampled_from(SHAPES), max_size=30).map(" ".join)
    | st.lists(st.sampled_from(SHAPES), max_size=30).map("".join)
    | st.text(alphabet=st.characters(codec="utf-8"), max_size=200)
)
def test_the_re2_gate_rules_out_only_kinds_that_are_absent(text: str) -> None:
    """One RE2 pass over the text as it is (before folding) says which kinds may be in it; the
    findings are those of searching for every kind."""
    from breakwater.core import detectors

    gated = scan(text)
    assert isinstance(detectors._GATE, tuple)  # google-re2 is a dependency: the gate is made
    gate, detectors._GATE = detectors._GATE, None  # (None: no gate, every kind searched)
    try:
        assert scan(text) == gated
    finally:
        detectors._GATE = gate
