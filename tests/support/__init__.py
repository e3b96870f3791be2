"""Support code of the test suite (fixtures and helpers that are not tests themselves)."""
