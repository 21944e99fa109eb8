"""scanner/aws/ installs as the import package audit_bedrock.aws: everything that talks to botocore.

- clients: Sessions (one botocore session per worker thread, switchable credentials, AssumeRole), CallLog
- tuning:  the process-wide botocore savings behind one switch (Sessions(tuned=False),
           AUDIT_BEDROCK_PLAIN_CLIENTS=1); they trim models to the operations the caller declares
- redact:  the secret registry, redact() and the logging SecretFilter
- errors:  AWS error codes and printable error text

It imports nothing from the rest of audit_bedrock but audit_bedrock.errors: collectors and the scan depend
on it, never the other way round.
"""
