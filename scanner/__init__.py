"""audit-bedrock: audit Amazon Bedrock model invocation logging across an AWS Organization."""

__version__ = "0.1.0"
