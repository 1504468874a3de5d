"""Tearline: an intelligence-sharing exchange serving STIX 2.1 over TAXII 2.1."""
