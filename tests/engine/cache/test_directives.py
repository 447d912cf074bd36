"""Cache directives: the header and the body field, parsed together; anything unknown is a 400."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from breakwater.core.errors import InvalidRequest
from breakwater.engine.cache.directives import Directives, parse_directives


def test_no_directives_at_all() -> None:
    """Neither header nor body field: nothing asked."""
    assert parse_directives(None, None) == Directives()


def test_tokens_combine_across_the_header_and_the_body() -> None:
    """Comma-separated, case-insensitive, from both places."""
    assert parse_directives(" No-Cache , ttl=90", "no-store") == Directives(True, True, 90.0)


@pytest.mark.parametrize("value", ["max-age=5", "ttl=", "ttl=abc", "ttl=0", "ttl=-3", "ttl=nan", "ttl=1e12"])
def test_a_bad_directive_is_an_invalid_request_naming_it(value: str) -> None:
    """Unknown directives and TTLs that are not 0 < seconds <= 30 days are refused."""
    with pytest.raises(InvalidRequest) as caught:
        parse_directives(value, None)
    assert caught.value.param == "x-breakwater-cache"


@settings(max_examples=300, derandomize=True)
@given(header=st.text(), field=st.one_of(st.none(), st.text()))
def test_any_text_is_directives_or_an_invalid_request(header: str, field: str | None) -> None:
    """Whatever a client sends, the answer is directives or a 400 (never another exception: no 500)."""
    try:
        result = parse_directives(header, field)
    except InvalidRequest as exc:
        assert exc.param == "x-breakwater-cache"
    else:
        assert isinstance(result, Directives)
