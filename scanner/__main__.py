"""Allow `python -m audit_bedrock`."""

from audit_bedrock.cli import entry

entry()
