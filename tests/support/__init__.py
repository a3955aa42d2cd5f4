"""Helpers that start the real components the tests use."""
