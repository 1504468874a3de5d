"""Authentication: bearer JWTs verified with python-jose, turned into a Principal."""
