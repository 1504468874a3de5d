"""The top of the canonical classification scale (ranks 0-4; names live in ``stix_mappings/``)."""

TOP_RANK = 4
