"""`--shard N/M`: every namespace belongs to exactly one shard, the same one in every process and version."""

from __future__ import annotations

import collections

import pytest

from remediator.engine import shards


def test_the_owner_of_a_namespace_is_pinned_by_its_sha256_not_by_python_hash() -> None:
    # printf %s payments | sha256sum | cut -c1-16 -> df384ae97c77ad30; modulo 3 and 16 is 0.
    assert shards.shard_of("payments", 3) == 0x_df384ae97c77ad30 % 3 == 0
    assert shards.shard_of("payments", 16) == 0
    # Values a changed hash would move (a re-shard on upgrade would be a silent ownership change).
    assert [shards.shard_of("default", m) for m in (2, 3, 5, 16)] == [1, 1, 4, 13]
    assert [shards.shard_of("team-a-0", m) for m in (2, 3, 5, 16)] == [0, 1, 0, 14]


@pytest.mark.parametrize("count", [1, 3, 8])
def test_each_namespace_is_owned_by_exactly_one_of_m_shards_and_all_get_some(count: int) -> None:
    names = [f"ns-{i}" for i in range(2000)]
    owners = {name: [i for i in range(count) if shards.Shard(i, count).owns(name)] for name in names}
    assert all(len(found) == 1 for found in owners.values())
    sizes = collections.Counter(found[0] for found in owners.values())
    assert min(sizes.values()) > len(names) / count * 0.8, sizes


def test_shard_text_is_index_slash_count() -> None:
    assert shards.parse_shard("2/3") == shards.Shard(2, 3)
    assert str(shards.parse_shard("0/1")) == "0/1"


@pytest.mark.parametrize("text", ["3/3", "4/3", "0/0", "-1/3", "1", "a/3", "1/b", "1/3/5", ""])
def test_a_shard_outside_0_to_m_minus_1_is_refused_with_what_is_expected(text: str) -> None:
    with pytest.raises(ValueError, match=r"expected N/M"):
        shards.parse_shard(text)


def test_with_a_shard_and_a_selection_a_namespace_is_owned_only_when_both_hold() -> None:
    payments_shard = shards.Shard(shards.shard_of("payments", 3), 3)
    other_shard = shards.Shard((payments_shard.index + 1) % 3, 3)
    assert shards.Scope().owns("payments"), "no shard and no selector: every namespace"
    assert shards.Scope(shard=payments_shard, selected=frozenset({"payments"})).owns("payments")
    assert not shards.Scope(shard=other_shard, selected=frozenset({"payments"})).owns("payments")
    assert not shards.Scope(shard=payments_shard, selected=frozenset({"shop"})).owns("payments")
    assert not shards.Scope(selected=frozenset()).owns("payments"), "a selector matching nothing: none"
