"""What an ARN names, for the OCSF and ASFF renderers: partition, service, account, region and resource type."""

from __future__ import annotations

from dataclasses import dataclass

# (service, resource prefix) -> (ASFF Resources[].Type, CloudFormation-style type for OCSF resources[].type).
# ASFF types are those of the AWS Security Finding Format's resource list; anything else is "Other".
_TYPES: dict[tuple[str, str], tuple[str, str]] = {
    ("s3", ""): ("AwsS3Bucket", "AWS::S3::Bucket"),
    ("iam", "role"): ("AwsIamRole", "AWS::IAM::Role"),
    ("iam", "root"): ("AwsAccount", "AWS::::Account"),
    ("kms", "key"): ("AwsKmsKey", "AWS::KMS::Key"),
    ("kms", "alias"): ("AwsKmsKey", "AWS::KMS::Key"),
    ("logs", "log-group"): ("Other", "AWS::Logs::LogGroup"),
    ("bedrock", "model-invocation-logging"): ("Other", "AWS::Bedrock::ModelInvocationLoggingConfiguration"),
    ("organizations", "account"): ("AwsAccount", "AWS::::Account"),
}


@dataclass(frozen=True)
class Arn:
    """The parts of an ARN (empty strings for what it does not say)."""

    partition: str
    service: str
    region: str
    account: str
    resource: str

    @property
    def kind(self) -> str:
        """The resource-type prefix: `role` of `role/x`, `log-group` of `log-group:x`; '' for S3 buckets."""
        head = self.resource.replace(":", "/").split("/", 1)[0]
        return "" if self.service == "s3" else head

    def types(self) -> tuple[str, str]:
        """(ASFF type, CloudFormation-style type)."""
        return _TYPES.get((self.service, self.kind), ("Other", f"AWS::{self.service or 'Unknown'}"))


def parse_arn(text: str) -> Arn:
    """Split an ARN; a value that is not one gives partition 'aws' and the text as its resource."""
    parts = text.split(":", 5)
    if len(parts) == 6 and parts[0] == "arn":
        return Arn(parts[1] or "aws", parts[2], parts[3], parts[4], parts[5])
    return Arn("aws", "", "", "", text)
