"""Load and validate the YAML config: unknown keys, wrong types and bad values exit 2 naming file and key."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit_bedrock.constants import ACCOUNT_ID_RE, DATA_TYPES, FAIL_ON_LEVELS, RULE_ID_RE, SEVERITIES
from audit_bedrock.errors import UsageError
from audit_bedrock.yamlcheck import Checker, did_you_mean, read_yaml

# CloudWatch ListMetrics "doesn't return information about metrics if those metrics haven't reported data in the
# past two weeks": a longer usage_lookback_days would silently miss older use, so it is refused.
MAX_LOOKBACK_DAYS = 14


@dataclass(frozen=True)
class Suppression:
    """Silences one rule for an account (and optionally a region) until `expires`."""

    rule: str
    account: str
    region: str | None
    reason: str
    expires: dt.date | None

    def matches(self, rule_id: str, account_id: str, region: str | None) -> bool:
        if self.rule not in (rule_id, "*") or self.account not in (account_id, "*"):
            return False
        return self.region in (None, "*", region)

    def expired(self, today: dt.date) -> bool:
        return self.expires is not None and self.expires < today


@dataclass(frozen=True)
class ApprovedDestinations:
    """Where logs may go; only checked (BIL-017) when configured."""

    buckets: tuple[str, ...] = ()
    log_groups: tuple[str, ...] = ()
    accounts: tuple[str, ...] = ()

    def configured(self) -> bool:
        return bool(self.buckets or self.log_groups or self.accounts)


@dataclass(frozen=True)
class Config:
    """Every setting a scan reads; defaults apply when the key is absent."""

    role_name: str = "AuditBedrockRole"  # the read-only role deploy/audit-role.yaml creates
    external_id: str | None = None
    regions: tuple[str, ...] | None = None  # None means "all"
    required_data_types: tuple[str, ...] = DATA_TYPES
    usage_lookback_days: int = 14
    min_retention_days: int = 90
    approved_destinations: ApprovedDestinations = field(default_factory=ApprovedDestinations)
    severity_overrides: tuple[tuple[str, str], ...] = ()
    disabled_rules: tuple[str, ...] = ()
    suppressions: tuple[Suppression, ...] = ()
    rule_paths: tuple[str, ...] = ()
    fail_on: str = "high"
    max_workers: int = 16
    source: str | None = None

    def rule_params(self) -> dict[str, Any]:
        """The values rules may read as `params.*`."""
        return {
            "required_data_types": list(self.required_data_types),
            "usage_lookback_days": self.usage_lookback_days,
            "min_retention_days": self.min_retention_days,
            "approved_destinations": {
                "configured": self.approved_destinations.configured(),
                "buckets": list(self.approved_destinations.buckets),
                "log_groups": list(self.approved_destinations.log_groups),
                "accounts": list(self.approved_destinations.accounts),
            },
        }


KNOWN_KEYS: tuple[str, ...] = (
    "role_name", "external_id", "regions", "required_data_types", "usage_lookback_days",
    "min_retention_days", "approved_destinations", "severity_overrides", "disabled_rules",
    "suppressions", "rule_paths", "fail_on", "max_workers",
)
SUPPRESSION_KEYS: tuple[str, ...] = ("rule", "account", "region", "reason", "expires")
APPROVED_KEYS: tuple[str, ...] = ("buckets", "log_groups", "accounts")


class _Checker(Checker):
    """The config's own checks on top of the shared ones."""

    def account_list(self, key: str, value: Any) -> tuple[str, ...]:
        items = self.str_list(key, [str(v) if isinstance(v, int) else v for v in value]
                              if isinstance(value, list) else value)
        for i, item in enumerate(items):
            self.pattern(f"{key}[{i}]", item, ACCOUNT_ID_RE, "a 12-digit AWS account id")
        return items


def parse_config(data: Any, source: str, text: str = "", known_regions: tuple[str, ...] = ()) -> Config:
    """Validate a parsed YAML document and build a Config."""
    chk = _Checker(source, text)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UsageError(f"the config must be a mapping of keys, got {type(data).__name__}", source=source)
    chk.unknown(data, KNOWN_KEYS, "")
    kw: dict[str, Any] = {"source": source}

    if "role_name" in data:
        kw["role_name"] = chk.string("role_name", data["role_name"])
    if "external_id" in data:
        kw["external_id"] = chk.string("external_id", data["external_id"], allow_none=True)
    if "regions" in data:
        regions = data["regions"]
        if regions == "all":
            kw["regions"] = None
        else:
            kw["regions"] = validate_regions(chk.str_list("regions", regions), known_regions,
                                             lambda bad: chk.fail("regions", bad))
    if "required_data_types" in data:
        types_ = chk.str_list("required_data_types", data["required_data_types"])
        for i, t in enumerate(types_):
            if t not in DATA_TYPES:
                raise chk.fail(f"required_data_types[{i}]",
                               f"unknown data type '{t}'{did_you_mean(t, DATA_TYPES)}; "
                               f"expected some of {', '.join(DATA_TYPES)}")
        kw["required_data_types"] = types_
    if "usage_lookback_days" in data:
        days = data["usage_lookback_days"]
        if isinstance(days, int) and not isinstance(days, bool) and days > MAX_LOOKBACK_DAYS:
            raise chk.fail("usage_lookback_days", f"at most {MAX_LOOKBACK_DAYS}, got {days}: CloudWatch ListMetrics "
                           "only returns series with data in the past two weeks, so older use would be reported as "
                           "none")
        kw["usage_lookback_days"] = chk.integer("usage_lookback_days", days, 1, MAX_LOOKBACK_DAYS)
    if "min_retention_days" in data:
        kw["min_retention_days"] = chk.integer("min_retention_days", data["min_retention_days"], 1, 3653)
    if "max_workers" in data:
        kw["max_workers"] = chk.integer("max_workers", data["max_workers"], 1, 256)
    if "fail_on" in data:
        fail_on = chk.string("fail_on", data["fail_on"])
        kw["fail_on"] = chk.choice("fail_on", fail_on, FAIL_ON_LEVELS)
    if "approved_destinations" in data:
        ad = data["approved_destinations"] or {}
        if not isinstance(ad, dict):
            raise chk.fail("approved_destinations", "expected a mapping with buckets, log_groups, accounts")
        chk.unknown(ad, APPROVED_KEYS, "approved_destinations")
        kw["approved_destinations"] = ApprovedDestinations(
            buckets=chk.str_list("approved_destinations.buckets", ad.get("buckets", [])),
            log_groups=chk.str_list("approved_destinations.log_groups", ad.get("log_groups", [])),
            accounts=chk.account_list("approved_destinations.accounts", ad.get("accounts", [])),
        )
    if "severity_overrides" in data:
        so = data["severity_overrides"] or {}
        if not isinstance(so, dict):
            raise chk.fail("severity_overrides", "expected a mapping of rule id to severity")
        for rule, sev in so.items():
            if not isinstance(rule, str) or not RULE_ID_RE.match(rule):
                raise chk.fail("severity_overrides", f"'{rule}' is not a rule id like BIL-005")
            chk.choice(f"severity_overrides.{rule}", sev, SEVERITIES)
        kw["severity_overrides"] = tuple(sorted(so.items()))
    if "disabled_rules" in data:
        rules = chk.str_list("disabled_rules", data["disabled_rules"])
        for i, r in enumerate(rules):
            chk.pattern(f"disabled_rules[{i}]", r, RULE_ID_RE, "a rule id like BIL-005")
        kw["disabled_rules"] = rules
    if "rule_paths" in data:
        base = Path(source).parent if source else Path(".")
        kw["rule_paths"] = tuple(str(base / p) for p in chk.str_list("rule_paths", data["rule_paths"]))
    if "suppressions" in data:
        kw["suppressions"] = _suppressions(chk, data["suppressions"], known_regions)
    return Config(**kw)


def _suppressions(chk: _Checker, value: Any, known_regions: tuple[str, ...]) -> tuple[Suppression, ...]:
    if not isinstance(value, list):
        raise chk.fail("suppressions", f"expected a list, got {type(value).__name__}")
    out = []
    for i, item in enumerate(value):
        key = f"suppressions[{i}]"
        if not isinstance(item, dict):
            raise chk.fail(key, "expected a mapping with rule, account, region, reason, expires")
        chk.unknown(item, SUPPRESSION_KEYS, key)
        for required in ("rule", "account", "reason"):
            if required not in item:
                raise chk.fail(key, f"missing required key '{required}'")
        rule = chk.string(f"{key}.rule", item["rule"])
        assert rule is not None
        if rule != "*":
            chk.pattern(f"{key}.rule", rule, RULE_ID_RE, "a rule id like BIL-005")
        account = str(item["account"]) if isinstance(item["account"], int) else item["account"]
        account = chk.string(f"{key}.account", account)
        assert account is not None
        if account != "*":
            chk.pattern(f"{key}.account", account, ACCOUNT_ID_RE, "a 12-digit AWS account id")
        region = chk.string(f"{key}.region", item.get("region"), allow_none=True)
        if region not in (None, "*") and known_regions and region not in known_regions:
            raise chk.fail(f"{key}.region",
                           f"unknown region '{region}'{did_you_mean(str(region), known_regions)}")
        reason = chk.string(f"{key}.reason", item["reason"])
        assert reason is not None
        expires_raw = item.get("expires")
        expires: dt.date | None
        if expires_raw is None:
            expires = None
        elif isinstance(expires_raw, dt.date):
            expires = expires_raw
        else:
            try:
                expires = dt.date.fromisoformat(str(expires_raw))
            except ValueError:
                raise chk.fail(f"{key}.expires", f"expected a date YYYY-MM-DD, got '{expires_raw}'") from None
        out.append(Suppression(rule, account, region, reason, expires))
    return tuple(out)


def validate_regions(regions: tuple[str, ...], known: tuple[str, ...], fail: Any) -> tuple[str, ...]:
    """Reject unknown region names; `fail(problem)` builds the error."""
    if not regions:
        raise fail("expected at least one region")
    if known:
        for r in regions:
            if r not in known:
                raise fail(f"unknown region '{r}'{did_you_mean(r, known)}")
    return tuple(dict.fromkeys(regions))


def load_config(path: str | None, known_regions: tuple[str, ...] = ()) -> Config:
    """Load `path` (or return defaults when None)."""
    if path is None:
        return Config()
    data, text = read_yaml(Path(path), "config")
    return parse_config(data, path, text, known_regions)
