"""Planning a PostgreSQL role's password rotation: which user gets the new password, which is
current, which is revoked or restored, and which roles are refused."""

from __future__ import annotations

import re

import hypothesis
import pytest
from hypothesis import strategies as st

from remediator.api.keyrotations import RoleStrategy
from remediator.engine import role_rotations
from remediator.engine.role_rotations import LoginUser, Refusal, RoleFacts, RolePlan

ALTERNATING = RoleStrategy.ALTERNATING_USERS


def planned(strategy: RoleStrategy, role: str, current: str | None) -> RolePlan:
    result = role_rotations.plan(strategy, role, current)
    assert isinstance(result, RolePlan), result
    return result


def test_the_first_alternating_rotation_creates_orders_b_and_keeps_the_live_role_working() -> None:
    plan = planned(ALTERNATING, "orders", None)
    assert plan.alternate == "orders_b"
    assert (plan.set_password_of, plan.current_after, plan.revoke_at_revocation) == ("orders_b", "orders_b", "orders")
    assert (plan.current_on_rollback, plan.revoke_on_rollback) == ("orders", "orders_b")
    assert not plan.restore_password_on_rollback


@pytest.mark.parametrize(("current", "new", "old"), [("orders_b", "orders", "orders_b"),
                                                     ("orders", "orders_b", "orders")])
def test_each_alternating_rotation_sets_the_user_that_is_not_current(current: str, new: str, old: str) -> None:
    plan = planned(ALTERNATING, "orders", current)
    assert (plan.set_password_of, plan.current_after, plan.revoke_at_revocation) == (new, new, old)
    assert (plan.current_on_rollback, plan.revoke_on_rollback) == (old, new)


def test_in_place_sets_the_role_itself_revokes_nothing_and_restores_the_old_password_on_rollback() -> None:
    for current in (None, "orders"):
        plan = planned(RoleStrategy.IN_PLACE, "orders", current)
        assert plan.alternate is None
        assert (plan.set_password_of, plan.current_after, plan.revoke_at_revocation) == ("orders", "orders", None)
        assert (plan.current_on_rollback, plan.revoke_on_rollback) == ("orders", None)
        assert plan.restore_password_on_rollback


def test_switching_to_in_place_while_orders_b_is_current_revokes_orders_b_at_revocation() -> None:
    plan = planned(RoleStrategy.IN_PLACE, "orders", "orders_b")
    assert (plan.set_password_of, plan.current_after, plan.revoke_at_revocation) == ("orders", "orders", "orders_b")
    assert (plan.current_on_rollback, plan.revoke_on_rollback) == ("orders_b", "orders")


def test_a_role_whose_alternate_would_exceed_63_bytes_is_refused_unless_in_place() -> None:
    longest = "r" * 61  # r…r_b is exactly 63 bytes
    assert planned(ALTERNATING, longest, None).alternate == longest + "_b"
    refused = role_rotations.plan(ALTERNATING, longest + "r", None)
    assert isinstance(refused, Refusal) and refused.reason == "RoleNameTooLong"
    assert "63-byte" in refused.message
    assert planned(RoleStrategy.IN_PLACE, longest + "rr", None).set_password_of == longest + "rr"
    multibyte = role_rotations.plan(ALTERNATING, "é" * 31, None)  # 62 bytes in 31 characters
    assert isinstance(multibyte, Refusal) and multibyte.reason == "RoleNameTooLong"


def test_a_recorded_current_user_that_is_neither_login_user_is_refused() -> None:
    refused = role_rotations.plan(ALTERNATING, "orders", "billing")
    assert isinstance(refused, Refusal) and refused.reason == "UnknownCurrentUser"
    assert "billing" in refused.message


def facts(role: LoginUser | None = None, alternate: LoginUser | None = None) -> RoleFacts:
    return RoleFacts(role=role or LoginUser("orders", exists=True),
                     alternate=alternate or LoginUser("orders_b", exists=False), database="shop")


@pytest.mark.parametrize(("user", "reason", "words"), [
    (LoginUser("orders", exists=True, superuser=True), "SuperuserRole", "orders is a superuser"),
    (LoginUser("orders", exists=True, owns_database=True), "DatabaseOwnerRole", "orders owns the database shop"),
    (LoginUser("orders", exists=True, is_operator=True), "OperatorRole", "orders is the role the operator"),
    (LoginUser("orders", exists=False), "RoleNotFound", "role orders does not exist"),
], ids=["superuser", "owner", "operator", "missing"])
def test_refused_roles_each_say_why(user: LoginUser, reason: str, words: str) -> None:
    for strategy in RoleStrategy:
        refused = role_rotations.refusal(facts(role=user), strategy)
        assert refused is not None and refused.reason == reason and words in refused.message


def test_an_alternate_user_that_is_refused_refuses_the_rotation() -> None:
    alternate = LoginUser("orders_b", exists=True, member_of_role=True, is_operator=True)
    refused = role_rotations.refusal(facts(alternate=alternate), ALTERNATING)
    assert refused == Refusal("OperatorRole", "orders_b is the role the operator connects as: rotating it "
                                              "would cut the operator off")


def test_an_orders_b_that_is_not_a_member_of_orders_is_someone_elses_and_refused() -> None:
    stranger = LoginUser("orders_b", exists=True, superuser=True)
    refused = role_rotations.refusal(facts(alternate=stranger), ALTERNATING)
    assert refused is not None and refused.reason == "SuperuserRole"
    refused = role_rotations.refusal(facts(alternate=LoginUser("orders_b", exists=True)), ALTERNATING)
    assert refused is not None and refused.reason == "AlternateUserConflict"
    assert role_rotations.refusal(facts(alternate=stranger), RoleStrategy.IN_PLACE) is None  # never touched


def test_a_plain_role_may_be_rotated() -> None:
    member = LoginUser("orders_b", exists=True, member_of_role=True)
    assert role_rotations.refusal(facts(), ALTERNATING) is None
    assert role_rotations.refusal(facts(alternate=member), ALTERNATING) is None


def test_settings_are_mirrored_with_only_the_differences() -> None:
    role = LoginUser("orders", exists=True, settings=('search_path="$user", public, "My Schema"',
                                                      "statement_timeout=5s", "work_mem=64MB"))
    alternate = LoginUser("orders_b", exists=True, settings=("statement_timeout=5s", "work_mem=4MB", "lock_timeout=1s"))
    to_set, to_reset = role_rotations.settings_changes(role, alternate)
    assert to_set == [role_rotations.Setting("search_path", ("$user", "public", "My Schema")),
                      role_rotations.Setting("work_mem", ("64MB",)),
                      role_rotations.Setting("role", ("orders",))]  # orders_b acts as orders
    assert to_reset == ["lock_timeout"]
    same = LoginUser("orders_b", exists=True, settings=(*role.settings, "role=orders"))
    assert role_rotations.settings_changes(role, same) == ([], [])


@pytest.mark.parametrize(("flattened", "elements"), [
    ("public", ["public"]),
    ('"$user", public', ["$user", "public"]),
    ('"a,b", "say ""hi""",c', ["a,b", 'say "hi"', "c"]),
    ("", []),
])
def test_list_settings_split_like_postgresql_flattens_them(flattened: str, elements: list[str]) -> None:
    assert role_rotations.split_list(flattened) == elements


def flatten(elements: list[str]) -> str:
    """What PostgreSQL stores in rolconfig for a list setting: plain names bare, the rest double-quoted."""
    return ", ".join(e if re.fullmatch(r"[a-z_][a-z0-9_$]*", e) else '"' + e.replace('"', '""') + '"'
                     for e in elements)


@hypothesis.given(st.lists(st.text(st.characters(exclude_characters="\x00"), min_size=1), max_size=6))
def test_any_list_setting_comes_back_element_by_element(elements: list[str]) -> None:
    assert role_rotations.split_list(flatten(elements)) == elements


@hypothesis.given(st.sampled_from(list(RoleStrategy)), st.lists(st.booleans(), max_size=8))
def test_a_run_of_rotations_and_rollbacks_never_sets_the_password_of_the_user_in_use(
        strategy: RoleStrategy, verified: list[bool]) -> None:
    current: str | None = None
    for passed in verified:
        plan = planned(strategy, "orders", current)
        live = current or "orders"
        assert plan.set_password_of in ("orders", "orders_b")
        if strategy == ALTERNATING:
            assert plan.set_password_of != live and plan.revoke_at_revocation == live
        assert plan.current_on_rollback == live
        current = plan.current_after if passed else plan.current_on_rollback
