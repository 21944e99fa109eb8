"""Config loading: the example documents every key, defaults, and settings reach the run."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from audit_bedrock.config import KNOWN_KEYS, Config, load_config, parse_config
from audit_bedrock.discovery import bedrock_regions
from audit_bedrock.errors import UsageError
from tests.conftest import ROOT


def test_example_documents_every_key_and_loads() -> None:
    text = (ROOT / "config.example.yaml").read_text()
    data = yaml.safe_load(text)
    assert set(data) == set(KNOWN_KEYS)
    cfg = load_config(str(ROOT / "config.example.yaml"), bedrock_regions())
    defaults = Config()
    assert cfg.required_data_types == defaults.required_data_types
    assert cfg.min_retention_days == defaults.min_retention_days
    assert cfg.regions is None and cfg.fail_on == "high" and cfg.max_workers == 16


@pytest.mark.parametrize(
    ("data", "check"),
    [
        pytest.param({"regions": ["us-east-1", "eu-west-1"]}, lambda c: c.regions == ("us-east-1", "eu-west-1"),
                     id="region-list"),
        pytest.param({"required_data_types": ["text"]}, lambda c: c.rule_params()["required_data_types"] == ["text"],
                     id="data-types"),
        pytest.param({"approved_destinations": {"accounts": [111111111111]}},
                     lambda c: c.approved_destinations.accounts == ("111111111111",), id="int-account-ids"),
        pytest.param({"suppressions": [{"rule": "BIL-001", "account": "111111111111", "reason": "r",
                                        "expires": dt.date(2030, 1, 1)}]},
                     lambda c: c.suppressions[0].expires == dt.date(2030, 1, 1) and c.suppressions[0].region is None,
                     id="suppression"),
        pytest.param({"severity_overrides": {"BIL-015": "medium"}},
                     lambda c: dict(c.severity_overrides) == {"BIL-015": "medium"}, id="override"),
    ],
)
def test_valid_values(data: dict[str, object], check: object) -> None:
    cfg = parse_config(data, "cfg.yaml", "", bedrock_regions())
    assert callable(check) and check(cfg)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        pytest.param("regoins: all\n", "line 1: 'regoins': unknown key (did you mean 'regions'?)", id="typo"),
        pytest.param("fail_on: hihg\n", "'fail_on': must be one of", id="bad-enum"),
        pytest.param("max_workers: many\n", "'max_workers': expected an integer", id="wrong-type"),
        pytest.param("regions: [us-east-9]\n", "unknown region 'us-east-9'", id="bad-region"),
        pytest.param("suppressions:\n  - rule: BIL-001\n    account: '12'\n    reason: x\n",
                     "line 3: 'suppressions[0].account': '12' is not a 12-digit", id="bad-account"),
        pytest.param("regions: [a\n", "invalid YAML", id="malformed"),
    ],
)
def test_invalid_config_names_file_key_and_problem(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(UsageError) as info:
        load_config(str(path), bedrock_regions())
    assert str(path) in str(info.value)
    assert needle in str(info.value)
