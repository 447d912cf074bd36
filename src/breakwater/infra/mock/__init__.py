"""The mock provider: a deterministic stand-in for OpenAI, Anthropic and Gemini, with fault injection.

Run it as a server (``breakwater mock``, see ``create_mock_app``) or in-process behind a
deployment of provider type ``mock`` (``MockService`` + ``MockSender``). docs/mock.md has the
determinism rules and the fault grammar.
"""

from breakwater.infra.mock.app import create_mock_app
from breakwater.infra.mock.faults import ConnectionReset, Faults, FaultSchedule, parse_faults, validate_faults
from breakwater.infra.mock.model import MockModel
from breakwater.infra.mock.service import MockReply, MockService
from breakwater.infra.mock.transport import MockSender

__all__ = [
    "ConnectionReset",
    "FaultSchedule",
    "Faults",
    "MockModel",
    "MockReply",
    "MockSender",
    "MockService",
    "create_mock_app",
    "parse_faults",
    "validate_faults",
]
