"""Each decision's effect on what each partner sees, against the independent oracle (tests/policy/oracle.py)."""

from __future__ import annotations

from tests.disclosure.helpers import decide, post_marked, review_of
from tests.policy.oracle import HOME, Marking, Principal, VersionSpec, marking_label, may_see, may_see_reviewed
from tests.recall.helpers import pull

PARTNER_AGREEMENTS = {"USA": 3, "GBR": 3, "FRA": 2, "DEU": 2, "CAN": 1}


def _marking(rank: int, name: str, *codes: str) -> Marking:
    return Marking("statement", rank, name, codes, False)


# (marking as posted, decision, narrowed marking or None)
CASES = [
    (_marking(1, "RESTRICTED", "USA", "FRA", "CAN"), "pending", None),
    (_marking(1, "RESTRICTED", "FVEY"), "release", None),
    (_marking(2, "CONFIDENTIAL", "NATO"), "release", None),
    (_marking(0, "UNCLASSIFIED", "EU", "USA"), "decline", None),
    (_marking(2, "CONFIDENTIAL", "NATO"), "narrow", _marking(2, "CONFIDENTIAL", "FRA", "USA")),
    (_marking(1, "RESTRICTED", "USA", "GBR", "DEU"), "narrow", _marking(2, "CONFIDENTIAL", "GBR", "DEU")),
    (_marking(3, "SECRET", "FVEY"), "release", None),  # two officers
]


def test_decisions_match_the_oracle_for_every_partner(client, api, collection, who):
    analyst, first, second = who("analyst"), who("officer", "officer-o1"), who("officer", "officer-o2")
    posted = []
    for marking, action, narrowed in CASES:
        item = post_marked(client, api, collection.id, analyst, marking.banner())
        review = review_of(client, first, item["id"])
        extra = {"banner": narrowed.banner()} if narrowed else {}
        if action != "pending":
            for officer in (first, second) if review["two_person"] else (first,):
                answer = decide(client, officer, [review["id"]], action, **extra)
                assert answer.status_code == 200, answer.text
        posted.append((item, marking, action, narrowed))

    for nation, clearance in PARTNER_AGREEMENTS.items():
        headers = who("partner", f"{nation.lower()}-oracle", nation=nation)
        served = {(o["id"], o.get("modified")) for o in pull(client, api, collection.id, headers, "all")}
        principal = Principal(nation, clearance, is_home=False)
        for item, marking, action, narrowed in posted:
            state = {"release": "released", "decline": "declined", "narrow": "replaced"}.get(action, "pending")
            expected = may_see_reviewed(principal, VersionSpec((marking,)), HOME, state)
            assert ((item["id"], item["modified"]) in served) == expected, (nation, marking.banner(), action)
            newer = {v for i, v in served if i == item["id"] and v != item["modified"]}
            if narrowed is not None:
                assert bool(newer) == may_see(principal, marking_label(narrowed, HOME)), (nation, narrowed.banner())
            else:
                assert not newer
