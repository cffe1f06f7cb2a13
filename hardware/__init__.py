"""Device drivers for the kiosk: lockers (RS485 lock boards, GPIO) and card readers.

Nothing here imports ``kiosk`` or ``loanserver``; nothing is opened at import time.
"""
