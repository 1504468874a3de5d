"""The auditor web console: a static page under ``/console/`` over the auditor JSON API.

The page holds no data of its own and has no server-side logic: it calls
``/api/v1/audit/...`` with the token the auditor pasted (kept in sessionStorage), so
every query it makes is audited and authorised exactly like any other API call.
"""
