"""The ``aws`` block of a Bedrock provider: region and where its credentials come from.

Without keys, the credentials come from AWS's standard chain (environment variables, the shared
``~/.aws/credentials`` and ``~/.aws/config`` files and their ``profile``, SSO, web identity,
container and instance roles), as every AWS SDK finds them. With keys, they are references
(``env:NAME`` / ``file:/path``) like every other secret in the config, never values.
"""

from __future__ import annotations

import re

from pydantic import field_validator, model_validator

from breakwater.core.config.base import _Model, _secret_reference

_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")


class AwsAuth(_Model):
    """Region and credentials of a ``type: bedrock`` provider."""

    #: e.g. ``us-east-1``; unset: ``AWS_REGION`` / ``AWS_DEFAULT_REGION`` when the gateway starts
    region: str | None = None
    #: a named profile of the shared config files (the chain's other sources are then skipped)
    profile: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    #: for temporary credentials (an assumed role's); needs the key pair
    session_token: str | None = None

    @field_validator("region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value is not None and not _REGION.match(value):
            raise ValueError("expected an AWS region such as 'us-east-1'")
        return value

    @field_validator("access_key_id", "secret_access_key", "session_token")
    @classmethod
    def _reference_only(cls, value: str | None) -> str | None:
        return _secret_reference(value)

    @model_validator(mode="after")
    def _pair(self) -> AwsAuth:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("access_key_id and secret_access_key go together (or neither, for the AWS chain)")
        if self.session_token is not None and self.access_key_id is None:
            raise ValueError("session_token needs access_key_id and secret_access_key")
        if self.profile is not None and self.access_key_id is not None:
            raise ValueError("give either a profile or keys, not both")
        return self
