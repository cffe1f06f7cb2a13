"""The link to the central loan server (docs/api.md; decision 0012).

``client`` speaks HTTP (requests) and turns every failure into ``ServerUnavailable``;
``wire`` checks and converts the server's JSON; ``relay`` sends the journal (the outbox);
``pull`` refreshes the reservations, loans and staff cache; ``heartbeat`` reports the
cabinet and receives remote commands; ``service.SyncService`` runs them on one thread.
Nothing here runs at import time.
"""
