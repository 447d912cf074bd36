"""The Responses API's state: stored responses for ``previous_response_id`` (docs/api.md, "Responses")."""
