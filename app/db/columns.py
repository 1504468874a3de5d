"""Widths of columns that hold STIX identifiers, shared by every table that stores one."""

from __future__ import annotations

STIX_ID_LENGTH = 288
"""STIX 2.1 allows a type of up to 250 characters, so an id of 250 + ``--`` + a 36-character UUID."""
