"""The section 2 decision through Casbin, clause by clause, and the cache in front of it."""

from __future__ import annotations

import dataclasses
import os
import shutil

import casbin
import pytest
from sqlmodel import Session

from app.auth.principal import Principal
from app.config.settings import REPO_ROOT
from app.markings.labels import ALL, LabelSpec
from app.markings.mappings import load_mappings
from app.markings.models import Label
from app.partners.service import save_partner, set_group
from app.policy.releasability import ReleasabilityPolicy
from app.policy.visibility import VisibilityCache
from tests.conftest import HOME

MAPPINGS = load_mappings(REPO_ROOT / "stix_mappings")
POLICIES = REPO_ROOT / "policies"


def partner(nation: str, clearance: int = 3) -> Principal:
    return Principal(f"{nation}-feed", nation, frozenset({"partner"}), clearance, frozenset(), is_home=False)


def home(clearance: int = 4) -> Principal:
    return Principal("analyst", HOME, frozenset({"analyst"}), clearance, frozenset(), is_home=True)


def label(rank: int, *codes: str, caveats: tuple[str, ...] = (), originator: str = HOME) -> LabelSpec:
    return LabelSpec(rank, frozenset(codes), frozenset(caveats), originator)


@pytest.fixture(scope="module")
def policy() -> ReleasabilityPolicy:
    return ReleasabilityPolicy(POLICIES, MAPPINGS, HOME)


@pytest.mark.parametrize(
    "principal, facts, expected",
    [
        # a. classification within clearance (a token may only lower it)
        (partner("USA", 3), label(3, "USA", "GBR"), True),
        (partner("USA", 2), label(3, "USA", "GBR"), False),
        (home(2), label(3), False),
        # b. releasable-to, with groups expanded
        (partner("GBR"), label(3, "USA", "GBR"), True),
        (partner("FRA"), label(3, "USA", "GBR"), False),
        (partner("NZL"), label(1, "FVEY"), True),
        (partner("FRA"), label(1, "FVEY"), False),
        (partner("POL"), label(1, "NATO"), True),
        (partner("AUS"), label(0, ALL), True),
        (partner("USA"), label(0), False),  # originator only (the home nation)
        (home(), label(4), True),
        # c. NOFORN: the home nation only
        (partner("USA"), label(3, "USA", caveats=("NOFORN",)), False),
        (home(), label(3, "USA", caveats=("NOFORN",)), True),
        (partner("USA"), label(3, "USA", caveats=("UNKNOWNCAVEAT",)), False),
        # d. third-party rule: partner-originated versions stay inside the originator's release
        (partner("GBR"), label(3, "GBR", originator="USA"), True),
        (partner("FRA"), label(3, "GBR", originator="USA"), False),
        (partner("USA"), label(3, originator="USA"), True),  # the originator sees its own
        (home(), label(3, originator="USA"), True),
        # legacy foundation label: no originator, no release: home only
        (partner("USA"), LabelSpec(0, frozenset(), frozenset(), None), False),
        (home(), LabelSpec(0, frozenset(), frozenset(), None), True),
    ],
)
def test_decision_table(policy, principal, facts, expected):
    assert policy.allows(principal, facts) is expected
    assert all(holds for _, holds in policy.explain(principal, facts)) is expected


def test_the_matcher_is_parsed_once_and_every_decision_still_its_own(monkeypatch):
    """pycasbin parses the matcher on each call; the policy parses it once, and a decision never
    carries over the names of the one before (alternating outcomes, each against the clauses)."""
    parses = []
    parse = casbin.Enforcer._get_expression
    monkeypatch.setattr(casbin.Enforcer, "_get_expression", staticmethod(lambda *a: parses.append(1) or parse(*a)))
    fresh = ReleasabilityPolicy(POLICIES, MAPPINGS, HOME)
    cases = [
        (partner("USA", 3), label(3, "USA")),
        (partner("USA", 2), label(3, "USA")),
        (partner("FRA"), label(1, "FVEY")),
    ]
    for principal, facts in cases * 20:
        assert fresh.allows(principal, facts) is all(holds for _, holds in fresh.explain(principal, facts))
    assert [fresh.allows(p, f) for p, f in cases] == [True, False, False]
    assert len(parses) == 1


def test_without_the_policy_line_nothing_is_visible(tmp_path):
    """The rule is switched on by `p2, releasability`; a policy without it denies everything."""
    shutil.copy(POLICIES / "model.conf", tmp_path / "model.conf")
    lines = (POLICIES / "policy.csv").read_text().splitlines()
    (tmp_path / "policy.csv").write_text("\n".join(line for line in lines if not line.startswith("p2")) + "\n")
    closed = ReleasabilityPolicy(tmp_path, MAPPINGS, HOME)
    assert not closed.allows(home(), label(0, ALL))


def _new_label(session: Session, key: str, rank: int, releasable_to: str = "", caveats: str = "") -> int:
    row = Label(key=key, rank=rank, releasable_to=releasable_to, caveats=caveats, originator=HOME)
    session.add(row)
    session.commit()
    return row.id


def test_cache_evaluates_each_label_once_per_principal(session):
    cache = VisibilityCache(POLICIES, MAPPINGS, HOME)
    usa = partner("USA", 3)
    first = cache.visible_label_ids(session, usa)
    after_first = cache.evaluations
    assert after_first > 0
    assert cache.visible_label_ids(session, usa) == first
    assert cache.evaluations == after_first, "a second request evaluates nothing"
    # Another token of the same nation and clearance shares the entry; a lowered clearance does not.
    cache.visible_label_ids(session, dataclasses.replace(usa, subject="other"))
    assert cache.evaluations == after_first
    cache.visible_label_ids(session, partner("USA", 1))
    assert cache.evaluations > after_first

    evaluated = cache.evaluations
    new = _new_label(session, f"TEST REL USA {os.urandom(4).hex()}", 0, "USA")
    hidden = _new_label(session, f"TEST NOFORN {os.urandom(4).hex()}", 0, "USA", "NOFORN")
    visible = cache.visible_label_ids(session, usa)
    assert new in visible and hidden not in visible
    assert cache.evaluations == evaluated + 2, "only the two new labels were evaluated"


def test_cache_is_dropped_when_partners_or_groups_change(session):
    cache = VisibilityCache(POLICIES, MAPPINGS, HOME)
    fvey_only = _new_label(session, f"TEST REL FVEY {os.urandom(4).hex()}", 0, "FVEY")
    assert fvey_only not in cache.visible_label_ids(session, partner("DEU", 2))
    set_group(session, "FVEY", ["USA", "GBR", "CAN", "AUS", "NZL", "DEU"], MAPPINGS)
    try:
        assert fvey_only in cache.visible_label_ids(session, partner("DEU", 2))
    finally:
        set_group(session, "FVEY", sorted(MAPPINGS.groups["FVEY"]), MAPPINGS)
    assert fvey_only not in cache.visible_label_ids(session, partner("DEU", 2))

    evaluated = cache.evaluations
    save_partner(session, nation="CAN", clearance=1, groups=["FVEY", "NATO"], home_nation=HOME)
    cache.visible_label_ids(session, partner("USA", 3))
    assert cache.evaluations > evaluated, "a partner change re-evaluates (the epoch moved)"


def test_cache_reloads_edited_policy_files(session, tmp_path):
    for name in ("model.conf", "policy.csv"):
        shutil.copy(POLICIES / name, tmp_path / name)
    cache = VisibilityCache(tmp_path, MAPPINGS, HOME)
    assert cache.visible_label_ids(session, home())
    policy_file = tmp_path / "policy.csv"
    lines = policy_file.read_text().splitlines()
    policy_file.write_text("\n".join(line for line in lines if not line.startswith("p2")) + "\n")
    stat = policy_file.stat()
    os.utime(policy_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert cache.visible_label_ids(session, home()) == []
