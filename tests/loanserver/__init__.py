"""Tests of the reference loan server."""
