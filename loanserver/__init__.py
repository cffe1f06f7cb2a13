"""The reference central loan server: data layer and ``loanserver admin`` commands.

It never imports ``kiosk`` or ``hardware`` (house rule 3): the contract between kiosk and
server is HTTP + JSON. Nothing happens at import time (house rule 6).
"""
