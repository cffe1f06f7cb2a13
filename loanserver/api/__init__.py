"""The loan server's HTTP API (FastAPI): kiosk API, back office, health. See docs/api.md."""
