"""Casbin role rights from policies/, and how they combine with a collection's granted roles."""

from __future__ import annotations

import shutil

import pytest

from app.config.settings import REPO_ROOT
from app.policy.enforcer import RoleRights


@pytest.fixture(scope="module")
def rights() -> RoleRights:
    return RoleRights(REPO_ROOT / "policies")


@pytest.mark.parametrize(
    "roles, resource, action, expected",
    [
        ({"partner"}, "taxii", "read", True),
        ({"partner"}, "taxii", "delete", False),
        ({"analyst"}, "taxii", "delete", True),
        ({"auditor"}, "taxii", "read", False),
        ({"auditor"}, "audit", "read", True),
        ({"admin"}, "collections", "manage", True),
        ({"partner"}, "collections", "manage", False),
        (set(), "taxii", "discover", False),
        ({"unknown"}, "taxii", "read", False),
        ({"auditor", "analyst"}, "taxii", "write", True),
    ],
)
def test_role_rights_table(rights, roles, resource, action, expected):
    assert rights.allows(roles, resource, action) is expected


def test_missing_policy_file_refuses_to_load(tmp_path):
    shutil.copy(REPO_ROOT / "policies" / "model.conf", tmp_path / "model.conf")
    with pytest.raises(FileNotFoundError, match=r"policy\.csv"):
        RoleRights(tmp_path)


def test_auditor_cannot_see_a_partner_collection(client, api, auth, collection):
    auditor = auth(subject="auditor-1", roles=("auditor",))
    assert client.get(f"{api}/", headers=auditor).status_code == 200
    assert client.get(f"{api}/collections/{collection.id}/", headers=auditor).status_code == 404
    assert client.get(f"{api}/collections/{collection.id}/objects/", headers=auditor).status_code == 404
    listed = client.get(f"{api}/collections/", headers=auditor).json().get("collections", [])
    assert collection.id not in {c["id"] for c in listed}


def test_can_read_and_can_write_are_computed_per_requester(client, api, auth, analyst, partner_usa, collection):
    as_analyst = client.get(f"{api}/collections/{collection.id}/", headers=analyst).json()
    as_partner = client.get(f"{api}/collections/{collection.id}/", headers=partner_usa).json()
    assert (as_analyst["can_read"], as_analyst["can_write"]) == (True, True)
    assert (as_partner["can_read"], as_partner["can_write"]) == (True, False)
