"""scanner/ installs as the import package audit_bedrock: audits Bedrock invocation logging across an Organization.

pyproject.toml's package-dir maps the repository's folders into this one package: scanner/ -> audit_bedrock
(the engine: CLI, config, discovery, scan, analyzer, rule engine, findings, demo), scanner/aws/ ->
audit_bedrock.aws, scanner/collectors/ -> audit_bedrock.collectors, reports/ -> audit_bedrock.reports,
rules/ -> audit_bedrock.rules. Imports always use the installed names (audit_bedrock.*), never the folders.
"""

__version__ = "0.1.0"
