"""Tests of the auditor web console (app/console)."""
