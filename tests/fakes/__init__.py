"""Test doubles: local fakes of external services."""
