"""audit-bedrock test suite; mirrors the layers."""
