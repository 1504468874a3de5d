"""The cached pattern check gives exactly stix2-patterns' verdict (app.items.patterns)."""

from __future__ import annotations

import pytest
import stix2
from hypothesis import given, settings
from hypothesis import strategies as st
from stix2patterns.validator import run_validator as library

from app.items import patterns

SHA256 = "a" * 64
CASES = [
    "[ipv4-addr:value = '198.51.100.7']",
    "[domain-name:value != 'example.org']",
    "[file:hashes.'SHA-256' = '" + SHA256 + "']",
    "[file:hashes.'SHA-256' = 'abc']",  # value fails the hash check
    "[file:hashes.'MD5' = '" + SHA256 + "']",  # wrong length for MD5
    "[file:hashes.'sha-256' = '" + SHA256.upper() + "']",
    "[file:hashes.sha256 = 'zz']",
    "[url:value = 'http://x/[a']",
    "[url:value = 'it\\'s']",
    "[url:value = 'bad\\q']",  # an escape the grammar refuses
    "[ipv4-addr:value = 'a'b']",
    "[file:name = 'a\\\\']",
    "[file:parent_directory_ref.path = 'C:\\\\x']",
    "[email-addr:value = '']",
    "[x-custom:value = 'x']",
    "[Foo:bar = 'x']",
    "[ipv4-addr:value = 'x' ]",
    "[ipv4-addr:value = 'x'] WITHIN 5 SECONDS",
    "ipv4-addr:value = 'x'",
    "[network-traffic:src_port = '80']",
]


@pytest.mark.parametrize("pattern", CASES)
def test_same_verdict_as_stix2_patterns(pattern):
    assert (patterns.run_validator(pattern, "2.1") == []) == (library(pattern, "2.1") == [])


def test_fast_path_taken_only_for_valid_simple_shapes():
    assert patterns.is_valid_fast("[ipv4-addr:value = '198.51.100.7']")
    assert not patterns.is_valid_fast("[file:hashes.'SHA-256' = 'abc']")
    assert not patterns.is_valid_fast("[ipv4-addr:value = 'x'] WITHIN 5 SECONDS")


def test_invalid_pattern_keeps_the_library_message():
    assert patterns.run_validator("[url:value = 'bad\\q']", "2.1") == library("[url:value = 'bad\\q']", "2.1")


def test_stix2_indicator_uses_it_and_still_refuses_bad_hashes():
    patterns.install()
    base = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
        "created": "2024-01-01T00:00:00.000Z",
        "modified": "2024-01-01T00:00:00.000Z",
        "valid_from": "2024-01-01T00:00:00Z",
        "pattern_type": "stix",
    }
    stix2.parse(base | {"pattern": "[file:hashes.'SHA-256' = '" + SHA256 + "']"}, allow_custom=True, version="2.1")
    with pytest.raises(Exception, match="hash"):
        stix2.parse(base | {"pattern": "[file:hashes.'SHA-256' = 'nothex']"}, allow_custom=True, version="2.1")


_values = st.text(alphabet=st.sampled_from(list("ab'\\[]() =0f9-:.")), max_size=12)
_paths = st.sampled_from(["value", "name", "hashes.'SHA-256'", "hashes.'MD5'", "hashes.'X'", "a.b", "A"])
_types = st.sampled_from(["ipv4-addr", "file", "x-y", "url", "Url", "-a"])


@settings(max_examples=300, deadline=None)
@given(_types, _paths, st.sampled_from(["=", "!=", "<", "LIKE"]), _values, st.sampled_from(["", " ", "]"]))
def test_same_verdict_on_generated_patterns(object_type, path, op, value, tail):
    pattern = f"[{object_type}:{path} {op} '{value}']{tail}"
    assert (patterns.run_validator(pattern, "2.1") == []) == (library(pattern, "2.1") == [])
