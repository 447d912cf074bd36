"""AWS credentials for Bedrock: the standard chain resolved off the request path and refreshed, and
what the runtime builds from a provider's ``aws`` block (references resolved, secrets hidden)."""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path
from typing import Any

import pytest

from breakwater.core.config import ConfigError, build_config
from breakwater.infra.aws_credentials import CredentialChain, StaticCredentials, botocore_chain
from breakwater.infra.clock import ManualClock, SystemRandom
from breakwater.providers.sigv4 import AwsCredentials
from breakwater.runtime.bedrock import MOCK_CREDENTIALS, build_aws
from breakwater.runtime.wiring import Wiring, check_environment

OLD = AwsCredentials("AKIDOLD", "old-secret-value-1", "old-token-value-1")
NEW = AwsCredentials("AKIDNEW", "new-secret-value-2", "new-token-value-2")


class GateClock(ManualClock):
    """A clock whose sleep waits for the test to let it go, and says when it starts waiting."""

    def __init__(self) -> None:
        super().__init__()
        self.sleeping = asyncio.Event()
        self._gate: asyncio.Queue[None] = asyncio.Queue()

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.sleeping.set()
        await self._gate.get()

    async def tick(self) -> None:
        """Let one sleep end, and wait until the loop is asleep again (its refresh done)."""
        self.sleeping.clear()
        self._gate.put_nowait(None)
        await self.sleeping.wait()


async def test_chain_resolves_in_a_thread_then_refreshes_each_interval() -> None:
    """start() resolves off the event loop's thread; each interval later, the chain is asked again."""
    answers = [OLD, NEW]
    threads: list[str] = []
    hidden: list[str | None] = []

    def resolve() -> AwsCredentials:
        threads.append(threading.current_thread().name)
        return answers.pop(0)

    clock = GateClock()
    chain = CredentialChain(resolve, clock, hidden.extend, interval=60.0)
    await chain.start()
    try:
        assert chain.current() == OLD
        assert threads and threads[0] != threading.current_thread().name
        await clock.sleeping.wait()
        assert clock.sleeps == [60.0]
        await clock.tick()
        assert chain.current() == NEW
        assert hidden == [OLD.secret_access_key, OLD.session_token, NEW.secret_access_key, NEW.session_token]
    finally:
        await chain.stop()


async def test_failed_refresh_keeps_credentials_and_logs_no_secret(caplog: pytest.LogCaptureFixture) -> None:
    """A refresh that raises keeps the credentials held; the log names the exception type only."""
    calls = iter([OLD])

    def resolve() -> AwsCredentials:
        found = next(calls, None)
        if found is None:
            raise RuntimeError(f"metadata endpoint down; last secret {OLD.secret_access_key}")
        return found

    chain = CredentialChain(resolve, ManualClock())
    await chain.refresh()
    with caplog.at_level(logging.WARNING, logger="breakwater.aws"):
        await chain.refresh()
    assert chain.current() == OLD
    assert "RuntimeError" in caplog.text
    assert OLD.secret_access_key not in caplog.text


async def test_no_credentials_warns_and_signs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    """A chain that finds nothing starts anyway (warning once); current() stays None."""
    chain = CredentialChain(lambda: None, GateClock())
    with caplog.at_level(logging.WARNING, logger="breakwater.aws"):
        await chain.start()
    try:
        assert chain.current() is None
        assert "no AWS credentials" in caplog.text
    finally:
        await chain.stop()


@pytest.fixture
def aws_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An environment where botocore sees only files under tmp_path and no metadata endpoint."""
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    return tmp_path


def test_botocore_chain_reads_environment_variables(aws_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The chain's first source: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFROMENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "env-token")
    assert botocore_chain(None)() == AwsCredentials("AKIDFROMENV", "env-secret", "env-token")


def test_botocore_chain_reads_a_named_profile(aws_env: Path) -> None:
    """A profile names a section of the shared credentials file."""
    (aws_env / "credentials").write_text(
        "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = d\n"
        "[harbour]\naws_access_key_id = AKIDHARBOUR\naws_secret_access_key = h-secret\n"
    )
    assert botocore_chain("harbour")() == AwsCredentials("AKIDHARBOUR", "h-secret", None)
    assert botocore_chain(None)() == AwsCredentials("AKIDDEFAULT", "d", None)


def test_botocore_chain_without_credentials_is_none(aws_env: Path) -> None:
    """Nothing in the environment, no files, no metadata: None, and the next call looks again."""
    resolve = botocore_chain(None)
    assert resolve() is None
    (aws_env / "credentials").write_text("[default]\naws_access_key_id = AKIDLATE\naws_secret_access_key = s\n")
    assert resolve() == AwsCredentials("AKIDLATE", "s", None)


def _config(aws: dict[str, Any] | None, **provider: Any) -> Any:
    return build_config(
        {
            "providers": {"aws": {"type": "bedrock", **({"aws": aws} if aws is not None else {}), **provider}},
            "deployments": {"d": {"provider": "aws", "model": "anthropic.claude-3-5-haiku-20241022-v1:0"}},
            "routes": {"r": {"deployments": ["d"]}},
        }
    )


def test_keys_by_reference_make_a_static_signer(tmp_path: Path) -> None:
    """access_key_id / secret_access_key / session_token references resolve once, into the deployment's signer."""
    secret_file = tmp_path / "secret"
    secret_file.write_text("file-secret-key\n")
    config = _config(
        {"region": "eu-central-1", "access_key_id": "env:AK", "secret_access_key": f"file:{secret_file}",
         "session_token": "env:TOKEN"}
    )  # fmt: skip
    environ = {"AK": "AKIDCONFIG", "TOKEN": "config-token"}
    assert check_environment(config, environ) == []
    wiring = Wiring(config, environ, sender=None, clock=ManualClock(), rng=SystemRandom(1))  # type: ignore[arg-type]
    target = wiring.router().routes["r"].deployments[0].target
    assert target.base_url == "https://bedrock-runtime.eu-central-1.amazonaws.com"
    assert target.signer is not None
    source = wiring.aws["aws"].source
    assert isinstance(source, StaticCredentials)
    assert source.current() == AwsCredentials("AKIDCONFIG", "file-secret-key", "config-token")


def test_region_from_the_environment_and_the_chain_by_default() -> None:
    """Without aws.region, AWS_REGION decides; without keys, the standard chain is used."""
    built = build_aws(_config(None).providers["aws"], {"AWS_REGION": "ap-southeast-2"}, ManualClock())
    assert isinstance(built.source, CredentialChain)
    assert built.signer.region == "ap-southeast-2"
    assert built.base_url == "https://bedrock-runtime.ap-southeast-2.amazonaws.com"


def test_mock_speaking_bedrock_signs_with_example_keys() -> None:
    """A mock with wire: bedrock signs with AWS's documented example keys, so its signature check passes."""
    config = build_config({"providers": {"m": {"type": "mock", "wire": "bedrock"}}, "deployments": {},
                           "routes": {}})  # fmt: skip
    built = build_aws(config.providers["m"], {}, ManualClock())
    assert built.source.current() == MOCK_CREDENTIALS


@pytest.mark.parametrize(
    ("aws", "provider", "environ", "path"),
    [
        ({}, {}, {}, "providers.aws.aws.region"),
        ({"region": "us-east-1", "access_key_id": "env:AK", "secret_access_key": "env:SK"}, {}, {"AK": "x"},
         "providers.aws.aws.secret_access_key"),
        ({"region": "us-east-1"}, {"api_key": "env:K"}, {"K": "k"}, "providers.aws.api_key"),
    ],
)  # fmt: skip
def test_environment_problems(
    aws: dict[str, Any], provider: dict[str, Any], environ: dict[str, str], path: str
) -> None:
    """A missing region, a reference naming nothing, or an api_key on Bedrock are reported by key path."""
    problems = check_environment(_config(aws, **provider), environ)
    assert path in [p.path for p in problems]
    assert all("secret" not in p.message.lower() or "SK" in p.message for p in problems)


def test_aws_block_only_on_bedrock() -> None:
    """An aws block on another wire is a configuration problem, not silently ignored."""
    config = build_config({"providers": {"o": {"type": "anthropic", "api_key": "env:K", "aws": {"region": "us-east-1"}}},
                           "deployments": {}, "routes": {}})  # fmt: skip
    assert "providers.o.aws" in [p.path for p in check_environment(config, {"K": "k"})]


@pytest.mark.parametrize(
    "aws",
    [
        {"access_key_id": "env:AK"},
        {"access_key_id": "AKIDINLINE", "secret_access_key": "env:SK"},
        {"session_token": "env:T"},
        {"profile": "p", "access_key_id": "env:AK", "secret_access_key": "env:SK"},
        {"region": "Mars"},
    ],
)
def test_invalid_aws_blocks_are_refused(aws: dict[str, Any]) -> None:
    """Half a key pair, an inline key, a token without keys, a profile with keys or a bad region fail validation."""
    with pytest.raises(ConfigError):
        _config(aws)


def test_missing_botocore_is_a_configuration_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the bedrock extra, a Bedrock provider is a problem naming the install command, not a crash."""
    import breakwater.runtime.bedrock as bedrock

    monkeypatch.setattr(bedrock, "find_spec", lambda name: None)
    problems = check_environment(_config({"region": "us-east-1"}), {})
    assert [(p.path, "breakwater[bedrock]" in p.message) for p in problems] == [("providers.aws.type", True)]
