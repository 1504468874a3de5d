"""Settings: the one pydantic-settings class, and key files kept under the data folder."""
