"""The releasability rule of docs/design.md section 2, decided by Casbin.

``policies/model.conf`` holds the rule as an ABAC matcher (request type
``r2``) over a principal and a label; the custom functions registered here
supply what a matcher cannot express alone: group expansion, caveat rules and
the third-party rule. Each function states one clause of section 2, so the
matcher reads like the contract.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import casbin
from casbin.util.expression import SimpleEval

from app.auth.principal import Principal
from app.markings.labels import LabelSpec
from app.markings.mappings import Mappings

RULE = "releasability"


def _in_release(nation: str, codes: frozenset[str], originator: str | None, mappings: Mappings) -> bool:
    if nation == originator:
        return True
    expanded = mappings.expand(codes)
    return expanded is None or nation in expanded


def released_to(principal: Principal, label: LabelSpec, mappings: Mappings) -> bool:
    """Clause b: the home nation, or a nation in the expanded releasable-to set (the originator is in it)."""
    return principal.is_home or _in_release(principal.nation, label.releasable_to, label.originator, mappings)


def caveats_permit(principal: Principal, label: LabelSpec, mappings: Mappings) -> bool:
    """Clause c: no caveat excludes the nation.

    ``home_only`` (NOFORN) is the one rule type; a caveat without a known rule is treated the
    same way, so an unexpected caveat can only narrow, never widen.
    """
    if principal.is_home:
        return True
    return not any(mappings.caveats.get(caveat, "home_only") == "home_only" for caveat in label.caveats)


def third_party(principal: Principal, label: LabelSpec, mappings: Mappings, home_nation: str) -> bool:
    """Clause d: a partner-originated version reaches another nation only inside its originator's release.

    A label's releasable-to set is the originator's own for versions the originator sent, and is
    kept inside it for versions derived here (checked at ingest), so the check is the release of
    the label by its originator. Home-originated and legacy labels need no third-party consent.
    """
    if principal.is_home or label.originator in (None, home_nation) or principal.nation == label.originator:
        return True
    return _in_release(principal.nation, label.releasable_to, label.originator, mappings)


class _ParsedOnceEnforcer(casbin.Enforcer):  # type: ignore[misc]
    """pycasbin builds a new evaluator for the matcher on every ``enforce``, parsing its text with
    ``ast.parse``: 70% of a decision's time (116 us of it), and a tenth of a 10,000-object ingest
    deciding who may see each new label. A loaded model's matchers do not change, so each text is
    parsed once. The evaluator keeps the names of its last evaluation; callers serialise their
    calls (``ReleasabilityPolicy`` holds a lock, as pycasbin needs anyway)."""

    def __init__(self, *args: Any) -> None:
        self._parsed: dict[str, SimpleEval] = {}
        super().__init__(*args)

    def _get_expression(self, expr: str, functions: dict[str, Any] | None = None) -> SimpleEval:
        parsed = self._parsed.get(expr)
        if parsed is None or parsed.functions is not functions:
            parsed = self._parsed[expr] = casbin.Enforcer._get_expression(expr, functions)
        return parsed


class ReleasabilityPolicy:
    """Loads the Casbin model and policy and answers "may this principal see this label?"."""

    def __init__(self, policies_dir: Path, mappings: Mappings, home_nation: str) -> None:
        self.model_path, self.policy_path = policies_dir / "model.conf", policies_dir / "policy.csv"
        self.mappings, self.home_nation = mappings, home_nation
        self._enforcer = _ParsedOnceEnforcer(str(self.model_path), str(self.policy_path))
        self._enforcer.add_function("released_to", lambda p, lab: released_to(p, lab, self.mappings))
        self._enforcer.add_function("caveats_permit", lambda p, lab: caveats_permit(p, lab, self.mappings))
        self._enforcer.add_function("third_party", lambda p, lab: third_party(p, lab, self.mappings, self.home_nation))
        self._context = self._enforcer.new_enforce_context("2")
        # pycasbin's enforcer is not thread-safe: it compiles the matcher with ast.parse on each call,
        # which on CPython 3.11 fails under concurrent threads (seen as a 500 under load).
        self._lock = threading.Lock()

    def allows(self, principal: Principal, label: LabelSpec) -> bool:
        """Casbin's decision for one (principal, label) pair."""
        with self._lock:
            return bool(self._enforcer.enforce(self._context, principal, label))

    def explain(self, principal: Principal, label: LabelSpec) -> list[tuple[str, bool]]:
        """Each clause of section 2 with its outcome, for operators (`tearline policy check`)."""
        return [
            ("a. classification within clearance", label.rank <= principal.clearance),
            ("b. nation in releasable-to", released_to(principal, label, self.mappings)),
            ("c. no caveat excludes the nation", caveats_permit(principal, label, self.mappings)),
            ("d. third-party rule", third_party(principal, label, self.mappings, self.home_nation)),
        ]
