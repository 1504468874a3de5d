"""The demo instance: a seeded local Tearline for a first look."""
