"""scanner/collectors/ installs as audit_bedrock.collectors: the collector registry and the collectors.

Which collectors run, in order, and the IAM actions they declare. The declarations are the scanner's whole
contract with AWS: they feed the generated audit-role policy (audit_bedrock.policy), the on-the-wire read-only
proof (tests), and the trimmed client models (audit_bedrock.aws.tuning): for a service in
tuning.TRIMMED_SERVICES (EC2), an operation a collector does not declare does not exist on the trimmed client.
A collector that starts calling a new operation declares its action in its `actions` first.

Collectors only read: the derived facts (policy analysis) are a later stage, audit_bedrock.derive.
"""

from __future__ import annotations

from audit_bedrock.collectors.base import AccountCollector, RegionCollector
from audit_bedrock.collectors.cloudtrail import DeletionCollector
from audit_bedrock.collectors.delivery import DeliveryCollector
from audit_bedrock.collectors.iam import IamCollector
from audit_bedrock.collectors.kms import KeyCollector
from audit_bedrock.collectors.logging_config import LoggingConfigCollector
from audit_bedrock.collectors.logs import LogGroupCollector
from audit_bedrock.collectors.metrics import UsageCollector
from audit_bedrock.collectors.retention import BucketProtectionCollector
from audit_bedrock.collectors.s3 import BucketCollector
from audit_bedrock.collectors.scp import ScpCollector

# The Bedrock logging configuration comes first: when it cannot be read the region is an error.
PRIMARY = LoggingConfigCollector()
# Destinations are read only when configured, metrics only where logging is off; keys after their users.
REGION_COLLECTORS: tuple[RegionCollector, ...] = (LogGroupCollector(), BucketCollector(), KeyCollector(),
                                                  UsageCollector())
# The evidence collectors (BIL-022..025) come after the destinations they read about.
REGION_COLLECTORS += (BucketProtectionCollector(), DeliveryCollector(), DeletionCollector())
# IAM is global: read once per account, after every region named its delivery role.
# The SCPs were read once per scan by the caller: ScpCollector places them on the account, at no call.
ACCOUNT_COLLECTORS: tuple[AccountCollector, ...] = (IamCollector(), ScpCollector())

# Discovery's own reads, in the member account.
DISCOVERY_ACTIONS: tuple[str, ...] = ("ec2:DescribeRegions",)


def required_actions() -> list[str]:
    """Every IAM action the scanner calls inside a member account, sorted.

    The scan passes these to Sessions(declared_actions=...): an operation a collector does not declare does not
    exist on the trimmed EC2 client (tuning.TRIMMED_SERVICES), so calling one raises AttributeError.
    """
    actions = set(DISCOVERY_ACTIONS) | set(PRIMARY.actions)
    for rc in REGION_COLLECTORS:
        actions.update(rc.actions)
    for ac in ACCOUNT_COLLECTORS:
        actions.update(ac.actions)
    return sorted(actions)
