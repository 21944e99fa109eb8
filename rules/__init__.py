"""rules/ installs as audit_bedrock.rules: the default rule pack (YAML, one rule per file), shipped as package data."""
