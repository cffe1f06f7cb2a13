"""The kiosk's brain: flows, rules and state, in plain Python (no Kivy, SQLAlchemy, pyscard).

Frontends (the Kivy UI, the scenario runner, the sync link) talk to ``KioskCore`` only;
the store is reached through the ``Store`` protocol in ``ports.py``.
"""
