"""The memory savings in session.py lean on botocore internals; if those move, the scan still works."""

from __future__ import annotations

from typing import Any

import pytest
from moto import mock_aws

from audit_bedrock import session


def test_scanner_works_when_botocore_internals_moved(monkeypatch: pytest.MonkeyPatch) -> None:
    def moved(*_: Any) -> None:
        raise AttributeError("type object 'ClientCreator' has no attribute '_load_service_model'")

    monkeypatch.setattr(session, "_share_models", moved)
    with mock_aws():
        sessions = session.Sessions()
        client = sessions.client("bedrock", "us-east-1", sessions.caller_credentials(), "123456789012")
        assert client.get_model_invocation_logging_configuration().get("loggingConfig") in (None, {})
        assert sessions.calls.calls == 1
