"""Test support shared by several test packages (live loan server, PostgreSQL cluster)."""
