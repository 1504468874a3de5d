"""TAXII 2.1 server: discovery, API root, collections, objects, manifest, versions, status."""
