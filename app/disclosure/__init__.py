"""Disclosure review: home-nation items a release rule holds wait for a disclosure officer's decision."""
