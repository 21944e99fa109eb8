"""The collector registry: which collectors run, in order, and the IAM actions they declare."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
from audit_bedrock.derive import derive
from audit_bedrock.evidence import derive_evidence

# The Bedrock logging configuration comes first: when it cannot be read the region is an error.
PRIMARY = LoggingConfigCollector()
# Destinations are read only when configured, metrics only where logging is off; keys after their users.
REGION_COLLECTORS: tuple[RegionCollector, ...] = (LogGroupCollector(), BucketCollector(), KeyCollector(),
                                                  UsageCollector())
# The evidence collectors (BIL-022..025) come after the destinations they read about.
REGION_COLLECTORS += (BucketProtectionCollector(), DeliveryCollector(), DeletionCollector())
# IAM is global: read once per account, after every region named its delivery role.
ACCOUNT_COLLECTORS: tuple[AccountCollector, ...] = (IamCollector(), ScpCollector())
# Derivers run last on the whole account document and add derived facts (policy analysis).
DERIVERS: tuple[Callable[[dict[str, Any]], None], ...] = (derive, derive_evidence)

# Discovery's own reads, in the member account.
DISCOVERY_ACTIONS: tuple[str, ...] = ("ec2:DescribeRegions",)


def required_actions() -> list[str]:
    """Every IAM action the scanner calls inside a member account, sorted."""
    actions = set(DISCOVERY_ACTIONS) | set(PRIMARY.actions)
    for rc in REGION_COLLECTORS:
        actions.update(rc.actions)
    for ac in ACCOUNT_COLLECTORS:
        actions.update(ac.actions)
    return sorted(actions)
