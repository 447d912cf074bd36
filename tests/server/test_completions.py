"""The official ``openai`` SDK's legacy ``client.completions.create``, plain and streamed, against
``/v1/completions`` on a running gateway: mapped onto chat for every upstream wire format, and
forwarded as sent to deployments that declare ``legacy_completions``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from breakwater.core.config import ConfigError, build_config
from breakwater.server.app import create_app
from tests.server.conftest import ROUTES
from tests.server.running import openai_sdk, serve
from tests.server.test_ledger import _row


@pytest.fixture(scope="module")
def client(gateway_url: str) -> openai.OpenAI:
    return openai_sdk(gateway_url)


@pytest.mark.parametrize("model", ROUTES)
def test_a_completion_is_the_chat_answer_as_text(client: openai.OpenAI, model: str) -> None:
    """A prompt gets a text_completion whose text is the chat answer to the prompt as a user message."""
    completion = client.completions.create(model=model, prompt="Say hello", max_tokens=200)
    chat = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Say hello"}], max_tokens=200
    )
    assert completion.object == "text_completion"
    assert completion.id.startswith("cmpl-")
    assert completion.choices[0].text == chat.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and chat.usage is not None
    assert completion.usage.prompt_tokens == chat.usage.prompt_tokens
    assert completion.usage.completion_tokens == chat.usage.completion_tokens


@pytest.mark.parametrize("model", ROUTES)
def test_a_streamed_completion_matches_the_plain_one(client: openai.OpenAI, model: str) -> None:
    """Streamed, the text_completion chunks add up to the plain answer, end with its finish reason
    and, with include_usage, a usage chunk."""
    plain = client.completions.create(model=model, prompt="Say hello", max_tokens=200)
    chunks = list(
        client.completions.create(
            model=model, prompt=["Say hello"], max_tokens=200, stream=True, stream_options={"include_usage": True}
        )
    )
    assert all(c.object == "text_completion" for c in chunks)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == plain.choices[0].text
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].usage is not None and plain.usage is not None
    assert chunks[-1].usage.completion_tokens == plain.usage.completion_tokens


def test_max_tokens_defaults_to_16_as_openai_does(client: openai.OpenAI) -> None:
    """Without max_tokens a completion stops at 16 tokens, with finish_reason length."""
    completion = client.completions.create(model="mock", prompt="Write a long story about the sea")
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None and completion.usage.completion_tokens == 16


def test_stop_and_n_are_passed_on(client: openai.OpenAI) -> None:
    """n asks for several choices; each is a text with its own index."""
    completion = client.completions.create(model="mock", prompt="Say hello", max_tokens=50, n=2)
    assert [c.index for c in completion.choices] == [0, 1]
    assert all(c.text for c in completion.choices)


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"prompt": ["one", "two"]}, "prompt"),
        ({"prompt": [1, 2, 3]}, "prompt"),
        ({"prompt": "x", "logprobs": 2}, "logprobs"),
        ({"prompt": "x", "echo": True}, "echo"),
        ({"prompt": "x", "suffix": "end"}, "suffix"),
        ({"prompt": "x", "best_of": 3}, "best_of"),
        ({"prompt": "x", "temperature": 3}, "temperature"),
    ],
)
def test_what_chat_cannot_carry_is_a_400_naming_it(
    client: openai.OpenAI, kwargs: dict[str, object], param: str
) -> None:
    """Batches, token-id prompts, echo, suffix, best_of above n, and (on Anthropic) logprobs are refused by name."""
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model="mock-claude", max_tokens=20, **kwargs)  # type: ignore[call-overload]
    body = caught.value.body
    assert isinstance(body, dict) and body["param"] == param


def test_a_lenient_route_drops_and_says_so(client: openai.OpenAI, ledger_path: Path) -> None:
    """On a route with unsupported_params: drop, echo and suffix are dropped, listed in
    x-breakwater-dropped-params and in the ledger row, which records the call like a chat."""
    raw = client.completions.with_raw_response.create(
        model="mock-claude-lenient", prompt="Say hello", max_tokens=50, echo=True, suffix="!"
    )
    assert set(raw.headers["x-breakwater-dropped-params"].split(",")) == {"echo", "suffix"}
    assert raw.parse().choices[0].text
    row = _row(ledger_path, raw.headers["x-request-id"])
    assert row["route"] == "mock-claude-lenient"
    assert set(row["dropped_params"].split(",")) == {"echo", "suffix"}
    assert row["output_tokens"] > 0


@pytest.mark.parametrize("model", ["mock", "remote", "mock-gemini", "remote-gemini"])
@pytest.mark.parametrize("stream", [False, True])
def test_logprobs_come_back_in_the_completions_shape(client: openai.OpenAI, model: str, stream: bool) -> None:
    """logprobs: N gives each token, its logprob, its N best alternatives and its offset in the text."""
    kwargs = {"model": model, "prompt": "Say hello", "max_tokens": 50, "logprobs": 2}
    if stream:
        chunks = [c for c in client.completions.create(**kwargs, stream=True) if c.choices]  # type: ignore[call-overload]
        text = "".join(c.choices[0].text for c in chunks)
        tokens, offsets, tops = [], [], []
        for chunk in chunks:
            lp = chunk.choices[0].logprobs
            if lp is not None:
                tokens += lp.tokens or []
                offsets += lp.text_offset or []
                tops += lp.top_logprobs or []
    else:
        completion = client.completions.create(**kwargs)  # type: ignore[call-overload]
        text, lp = completion.choices[0].text, completion.choices[0].logprobs
        assert lp is not None
        tokens, offsets, tops = lp.tokens or [], lp.text_offset or [], lp.top_logprobs or []
    assert tokens and "".join(tokens) == text
    assert offsets == [sum(len(t) for t in tokens[:i]) for i in range(len(tokens))]
    assert all(len(top) <= 2 for top in tops) and any(len(top) == 2 for top in tops)


def test_an_unknown_model_is_a_404(client: openai.OpenAI) -> None:
    """An unknown model is OpenAI's 404, as on chat."""
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="nope", prompt="x")


@pytest.fixture(scope="module")
def forwarding(mock_server_url: str) -> Iterator[str]:
    """A gateway whose deployments declare legacy_completions: the mock in-process and over a socket."""
    config = {
        "access": {"enabled": False},
        "ledger": {"enabled": False},
        "providers": {
            "local": {"type": "mock", "wire": "openai"},
            "remote": {"type": "openai", "host": "mock", "base_url": f"{mock_server_url}/v1", "api_key": "env:KEY"},
        },
        "deployments": {
            "d-local": {"provider": "local", "model": "mock-instruct", "legacy_completions": True},
            "d-remote": {"provider": "remote", "model": "mock-instruct", "legacy_completions": True},
        },
        "routes": {"local": {"deployments": ["d-local"]}, "remote": {"deployments": ["d-remote"]}},
    }
    with serve(create_app(build_config(config), environ={"KEY": "sk-test"})) as url:
        yield url


@pytest.mark.parametrize("model", ["local", "remote"])
def test_a_declaring_deployment_gets_the_completion_as_sent(forwarding: str, model: str) -> None:
    """On a deployment with legacy_completions, the upstream's /v1/completions answers: echo is
    honoured (the text starts with the prompt), nothing is dropped, and logprobs keep their shape."""
    client = openai_sdk(forwarding)
    raw = client.completions.with_raw_response.create(model=model, prompt="Say hello", max_tokens=40, echo=True)
    completion = raw.parse()
    assert "x-breakwater-dropped-params" not in raw.headers
    assert completion.choices[0].text.startswith("Say hello")
    assert len(completion.choices[0].text) > len("Say hello")
    with_logprobs = client.completions.create(model=model, prompt="Say hello", max_tokens=40, logprobs=1)
    lp = with_logprobs.choices[0].logprobs
    assert lp is not None and "".join(lp.tokens or []) == with_logprobs.choices[0].text


@pytest.mark.parametrize("model", ["local", "remote"])
def test_a_forwarded_stream_matches_the_forwarded_answer(forwarding: str, model: str) -> None:
    """Streamed through a declaring deployment, the chunks add up to the plain answer and carry usage."""
    client = openai_sdk(forwarding)
    plain = client.completions.create(model=model, prompt="Say hello", max_tokens=40, echo=True)
    chunks = list(
        client.completions.create(
            model=model,
            prompt="Say hello",
            max_tokens=40,
            echo=True,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].text for c in chunks if c.choices) == plain.choices[0].text
    assert chunks[-1].usage is not None and plain.usage is not None
    assert chunks[-1].usage.total_tokens == plain.usage.total_tokens


def test_legacy_completions_is_for_openai_wire_deployments_only() -> None:
    """A config declaring legacy_completions on an Anthropic deployment is refused, naming the key."""
    config = {
        "providers": {"c": {"type": "mock", "wire": "anthropic"}},
        "deployments": {"d": {"provider": "c", "model": "m", "legacy_completions": True}},
        "routes": {"r": {"deployments": ["d"]}},
    }
    with pytest.raises(ConfigError, match=r"deployments\.d\.legacy_completions"):
        build_config(config)
