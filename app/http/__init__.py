"""HTTP plumbing shared by every domain: errors, middleware, probes, request limits, dependencies."""
