"""Audit log: tamper-evident access records, dissemination records and the auditor API."""
