"""Items: stored STIX 2.1 object versions and the one query that reads them."""
