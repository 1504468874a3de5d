"""``stix_validation.is_valid`` answers as ``check`` does, on every object the validation tests use.

Reference groups (app.items.references) and granular redaction ask only whether an object is valid;
they use ``is_valid``, which skips building messages. Its verdict must be ``check``'s.
"""

from __future__ import annotations

import copy

import pytest

from app.items.references import reference_properties, without
from app.items.stix_validation import StixInvalid, check, is_valid
from tests.items.test_stix_validation import BASES, CUSTOM_DEFECTS, FIXTURE_OBJECTS, MUTANTS, STRICTER, WIDGET


def _checked(obj: dict) -> bool:
    try:
        check(copy.deepcopy(obj))
    except StixInvalid:
        return False
    return True


def _cases() -> dict[str, dict]:
    cases = {f"mutant:{key}": mutant for key, mutant in MUTANTS.items()}
    cases |= {f"base:{name}": base for name, base in BASES.items()}
    cases |= {f"fixture:{i}": obj for i, obj in enumerate(FIXTURE_OBJECTS) if isinstance(obj, dict)}
    cases |= {f"stricter:{name}": case for name, case in STRICTER.items()}
    cases |= {f"custom:{name}": WIDGET | defect for name, defect in CUSTOM_DEFECTS.items()}
    # What reference groups ask: each object without each of its reference properties.
    for name, base in BASES.items():
        for prop in reference_properties(base):
            cases[f"without:{name}:{prop}"] = without(base, (prop,))
    return cases


CASES = _cases()


def test_both_verdicts_occur():
    verdicts = {_checked(obj) for obj in CASES.values()}
    assert verdicts == {True, False}


@pytest.mark.parametrize("key", sorted(CASES))
def test_is_valid_is_check(key):
    assert is_valid(copy.deepcopy(CASES[key])) is _checked(CASES[key])
