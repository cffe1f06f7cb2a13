"""End-to-end and fault tests: the real kiosk and the real loan server over real HTTP."""
