"""Bedrock providers built from the config: region, endpoint, credentials source and signer.

``runtime/wiring.py`` asks this module for each ``type: bedrock`` provider (and each mock that
speaks the Bedrock wire, which signs with fixed example keys so the mock can check the signature
is there) and for the environment checks of their ``aws`` blocks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib.util import find_spec

from breakwater.core.config import Config, Problem
from breakwater.core.config import Provider as ProviderConfig
from breakwater.engine.ports import Clock
from breakwater.infra.aws_credentials import CredentialChain, StaticCredentials, botocore_chain
from breakwater.infra.credentials import CredentialError, resolve
from breakwater.observability.logging import hide_secrets
from breakwater.providers import eventstream, sigv4
from breakwater.providers.bedrock import base_url
from breakwater.providers.sigv4 import AwsCredentials, SigV4Signer

#: what a mock speaking Bedrock signs with (AWS's documented example key pair, not a secret)
MOCK_CREDENTIALS = AwsCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
MOCK_REGION = "us-east-1"


@dataclass(frozen=True, slots=True)
class AwsProvider:
    """One Bedrock provider's signer, endpoint and the credentials source the runtime starts."""

    signer: SigV4Signer
    base_url: str
    source: StaticCredentials | CredentialChain


def speaks_bedrock(p: ProviderConfig) -> bool:
    return p.type == "bedrock" or (p.type == "mock" and p.wire == "bedrock")


def region_of(p: ProviderConfig, environ: Mapping[str, str]) -> str | None:
    """The configured region, else the environment's (``AWS_REGION``, then ``AWS_DEFAULT_REGION``)."""
    if p.aws is not None and p.aws.region:
        return p.aws.region
    return environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or None


def build_aws(p: ProviderConfig, environ: Mapping[str, str], clock: Clock) -> AwsProvider:
    """The signer of a Bedrock provider (keys by reference, else the standard chain).

    Raises:
        CredentialError: a key reference names nothing, or no region is known.
    """
    sigv4.load()  # botocore, imported here at build time rather than on a first request
    eventstream.load()
    if p.type == "mock":
        source: StaticCredentials | CredentialChain = StaticCredentials(MOCK_CREDENTIALS)
        signer = SigV4Signer(source, region_of(p, environ) or MOCK_REGION, clock=clock.time)
        return AwsProvider(signer, p.base_url or "http://mock", source)
    region = region_of(p, environ)
    if region is None:
        raise CredentialError("no AWS region: set aws.region, or AWS_REGION in the environment")
    aws = p.aws
    if aws is not None and aws.access_key_id is not None:
        key_id = resolve(aws.access_key_id, environ) or ""
        secret = resolve(aws.secret_access_key, environ) or ""
        token = resolve(aws.session_token, environ)
        hide_secrets([secret, token])
        source = StaticCredentials(AwsCredentials(key_id, secret, token))
    else:
        source = CredentialChain(botocore_chain(aws.profile if aws else None), clock, hide_secrets)
    return AwsProvider(SigV4Signer(source, region, clock=clock.time), p.base_url or base_url(region), source)


def check_aws(config: Config, environ: Mapping[str, str]) -> list[Problem]:
    """botocore installed; an ``aws`` block only where the Bedrock wire is spoken; a region and
    resolvable keys for each."""
    problems: list[Problem] = []
    for name, p in config.providers.items():
        path = f"providers.{name}.aws"
        if not speaks_bedrock(p):
            if p.aws is not None:
                problems.append(Problem(path, "only a provider of type bedrock (or a mock with wire: bedrock) has one"))
            continue
        if find_spec("botocore") is None:
            need = "Bedrock signs with botocore: pip install 'breakwater[bedrock]'"
            problems.append(Problem(f"providers.{name}.type", need))
            continue
        if p.type == "mock":
            continue
        if region_of(p, environ) is None:
            problems.append(Problem(path + ".region", "no AWS region: set it, or AWS_REGION in the environment"))
        if p.api_key is not None:
            problems.append(
                Problem(f"providers.{name}.api_key", "Bedrock signs with AWS credentials (aws: ...), not a key")
            )
        aws = p.aws
        for field in ("access_key_id", "secret_access_key", "session_token"):
            reference = getattr(aws, field) if aws is not None else None
            try:
                resolve(reference, environ)
            except CredentialError as exc:
                problems.append(Problem(f"{path}.{field}", str(exc)))
    return problems
