"""--shard K/N: parsing and exit 2, and the partition's properties (exact cover, stability, balance)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit_bedrock import cli
from audit_bedrock.discovery import Estate
from audit_bedrock.model import Account
from audit_bedrock.shard import MAX_SHARDS, parse_shard, select, shard_of

IDS = [f"{(i * 7919 + 104729) % 10**12:012d}" for i in range(4000)]


@pytest.mark.parametrize(("spec", "expected"), [
    pytest.param("1/1", (1, 1), id="one-of-one"),
    pytest.param("3/8", (3, 8), id="middle"),
    pytest.param("8/8", (8, 8), id="last"),
    pytest.param(" 2 / 4 ", (2, 4), id="spaces"),
    pytest.param(f"1/{MAX_SHARDS}", (1, MAX_SHARDS), id="max-count"),
])
def test_parse_valid(spec: str, expected: tuple[int, int]) -> None:
    assert parse_shard(spec) == expected


@pytest.mark.parametrize(("spec", "message"), [
    pytest.param("0/3", "K must be between 1 and N", id="zero-index"),
    pytest.param("4/3", "K must be between 1 and N", id="index-above-count"),
    pytest.param("1/0", "N must be between 1", id="zero-count"),
    pytest.param(f"1/{MAX_SHARDS + 1}", "N must be between 1", id="too-many"),
    pytest.param("3", "is not K/N", id="no-slash"),
    pytest.param("a/b", "is not K/N", id="letters"),
    pytest.param("-1/3", "is not K/N", id="negative"),
    pytest.param("1/2/3", "is not K/N", id="three-parts"),
    pytest.param("", "is not K/N", id="empty"),
])
def test_parse_invalid(spec: str, message: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        parse_shard(spec)


@pytest.mark.parametrize("spec", [
    pytest.param("0/3", id="zero-index"),
    pytest.param("5/4", id="index-above-count"),
    pytest.param("x", id="garbage"),
])
def test_cli_rejects_bad_shard_with_exit_2(spec: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["--org", "--shard", spec])
    assert info.value.code == 2
    assert "--shard" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "message"), [
    pytest.param(["--shard", "1/2", "--from-facts", "facts.json"], "--shard applies to a scan", id="from-facts"),
    pytest.param(["--shard", "1/2", "--merge", "a.json"], "cannot be combined with --shard", id="merge"),
])
def test_cli_rejects_shard_combinations(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(args) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("count", [1, 2, 3, 7, 16, 100])
def test_every_account_in_exactly_one_shard(count: int) -> None:
    accounts = tuple(Account(i, f"name-{i}") for i in IDS[:1000])
    skipped = tuple((Account(i, status="SUSPENDED"), "account is SUSPENDED") for i in IDS[1000:1100])
    estate = Estate("o-example", IDS[0], accounts, skipped)
    seen: Counter[str] = Counter()
    for k in range(1, count + 1):
        part = select(estate, k, count)
        assert part.organization_id == estate.organization_id and part.caller_account == estate.caller_account
        seen.update(a.id for a in part.accounts)
        seen.update(a.id for a, _ in part.skipped)
        assert all(shard_of(a.id, count) == k for a in part.accounts)
        assert [a.id for a in part.accounts] == sorted(a.id for a in part.accounts)  # discovery's order is kept
    assert set(seen) == {a.id for a in accounts} | {a.id for a, _ in skipped}
    assert set(seen.values()) == {1}


@settings(max_examples=60, deadline=None)
@given(ids=st.sets(st.from_regex(r"\A[0-9]{12}\Z", fullmatch=True), max_size=60), count=st.integers(1, 40))
def test_partition_property(ids: set[str], count: int) -> None:
    """For any set of ids and any N: each id's shard is in 1..N, and the shards' union is exactly the set."""
    estate = Estate(None, "000000000000", tuple(Account(i) for i in sorted(ids)))
    parts = [{a.id for a in select(estate, k, count).accounts} for k in range(1, count + 1)]
    assert sum(len(p) for p in parts) == len(ids)
    assert set().union(*parts) == ids
    assert all(1 <= shard_of(i, count) <= count for i in ids)


@pytest.mark.parametrize("count", [2, 4, 8])
def test_shards_are_roughly_balanced(count: int) -> None:
    sizes = Counter(shard_of(i, count) for i in IDS)
    mean = len(IDS) / count
    assert set(sizes) == set(range(1, count + 1))
    assert all(abs(n - mean) <= 0.15 * mean for n in sizes.values()), sizes


@pytest.mark.parametrize(("account", "count", "expected"), [
    # Pinned: changing the hash moves accounts between shards of a running matrix; that must be deliberate.
    pytest.param("000000000001", 2, 1, id="pinned-1"),
    pytest.param("123456789012", 8, 3, id="pinned-2"),
    pytest.param("999999999999", 16, 5, id="pinned-3"),
])
def test_shard_of_is_pinned(account: str, count: int, expected: int) -> None:
    assert shard_of(account, count) == expected


def test_stable_across_processes() -> None:
    """Another interpreter with another hash seed puts every account in the same shard."""
    sample = IDS[:300]
    code = ("import json, sys; from audit_bedrock.shard import shard_of; "
            "print(json.dumps([shard_of(i, 7) for i in json.load(sys.stdin)]))")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], input=json.dumps(sample), capture_output=True, text=True,
                         env=env, check=True, timeout=60)
    assert json.loads(out.stdout) == [shard_of(i, 7) for i in sample]
