"""Recall: when versions a partner holds are tightened, revoked or recalled, each past recipient is told.

docs/design.md section 7b. :mod:`app.recall.detect` finds recalls in the storing transaction,
:mod:`app.recall.service` records them and stores the notices, :mod:`app.recall.report` answers
auditors (:mod:`app.recall.report_routes`), :mod:`app.recall.routes` serves analysts and partners.
"""
