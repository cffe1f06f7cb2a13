"""The Belgian eID card: APDUs, file parsing, authenticity, the PC/SC reader, an emulator.

Nothing here imports ``kiosk``; nothing is opened at import time. The national register
number and the photo never reach a log, a repr or an exception message.
"""
