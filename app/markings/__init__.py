"""Markings: labels (classification, releasability, caveats, originator) and their STIX forms."""
