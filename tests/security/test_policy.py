"""The authorisation policy, every (visibility, role, signed in, action) combination, against a
table written out by hand from the issue's rules."""

from __future__ import annotations

import itertools

import pytest

from worldgen.store.members import Role
from worldgen.web.auth.policy import ACTIONS, Action, Decision, decide

A, N, S, F = Decision.ALLOW, Decision.NOT_FOUND, Decision.SIGN_IN, Decision.FORBIDDEN

# action:            view chat rename change delete members invite manage edit
EXPECTED: dict[tuple[str, str], tuple[Decision, ...]] = {
    ("public", "anonymous"): (A, S, S, S, S, S, S, S, S),
    ("public", "outsider"): (A, A, F, F, F, F, F, F, F),
    ("public", "viewer"): (A, A, F, F, F, A, F, F, F),
    ("public", "editor"): (A, A, A, F, F, A, F, F, A),
    ("public", "owner"): (A, A, A, A, A, A, A, A, A),
    ("private", "anonymous"): (N, N, N, N, N, N, N, N, N),
    ("private", "outsider"): (N, N, N, N, N, N, N, N, N),
    ("private", "viewer"): (A, A, F, F, F, A, F, F, F),
    ("private", "editor"): (A, A, A, F, F, A, F, F, A),
    ("private", "owner"): (A, A, A, A, A, A, A, A, A),
}
ORDER: tuple[Action, ...] = (
    "view",
    "chat",
    "rename",
    "change",
    "delete",
    "members",
    "invite",
    "manage",
    "edit",
)


def test_the_table_covers_every_action() -> None:
    assert set(ORDER) == set(ACTIONS)


ROLES: dict[str, Role | None] = {
    "anonymous": None,
    "outsider": None,
    "viewer": "viewer",
    "editor": "editor",
    "owner": "owner",
}


@pytest.mark.parametrize(
    ("visibility", "who"), list(itertools.product(("public", "private"), ROLES))
)
def test_policy_table(visibility: str, who: str) -> None:
    got = tuple(
        decide(action, visibility=visibility, role=ROLES[who], signed_in=who != "anonymous")
        for action in ORDER
    )
    assert got == EXPECTED[(visibility, who)]
