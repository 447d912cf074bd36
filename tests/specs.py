"""Where the API descriptions the tests read are kept: ``tests/data/``, inside the repository.

- ``OPENAI_SPEC``: OpenAI's published OpenAPI description, vendored (its README says which version
  and under which licence);
- ``ANTHROPIC_MESSAGES_REQUEST``, ``GEMINI_GENERATE_CONTENT_REQUEST``: JSON Schemas of those request
  bodies, written for the fuzz tests from the vendors' API references (neither vendor publishes an
  OpenAPI description); each file's ``$comment`` says what it follows;
- ``BEDROCK_CONVERSE_REQUEST``: a JSON Schema of Bedrock's Converse body, from its API reference
  and botocore's service model of it (AWS publishes no JSON Schema of it);
- ``FEEDBACK_REQUEST``: a JSON Schema of Breakwater's own ``POST /v1/feedback`` body.
"""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
OPENAI_SPEC = DATA / "openai-openapi" / "openai-openapi.yaml"
ANTHROPIC_MESSAGES_REQUEST = DATA / "anthropic-messages-request.schema.json"
GEMINI_GENERATE_CONTENT_REQUEST = DATA / "gemini-generate-content-request.schema.json"
FEEDBACK_REQUEST = DATA / "feedback-request.schema.json"
BEDROCK_CONVERSE_REQUEST = DATA / "bedrock-converse-request.schema.json"
