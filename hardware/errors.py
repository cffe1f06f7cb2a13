"""The exceptions every hardware driver raises.

I/O modules translate library exceptions (``serial.SerialException``, pyscard errors)
into these at their boundary, so callers never see a third-party exception type.
"""

from __future__ import annotations


class HardwareError(Exception):
    """Base class of every hardware problem; ``str()`` is one line fit for an installer."""


class DeviceUnavailable(HardwareError):
    """The device is not there: no such port, adapter unplugged, reader gone."""


class DeviceBusy(DeviceUnavailable):
    """The device exists but another process holds it (exclusive open failed)."""


class DeviceTimeout(HardwareError):
    """The device did not answer in time."""


class ProtocolError(HardwareError):
    """The device answered something we cannot accept (garbled, wrong address, short)."""


class ChecksumError(ProtocolError):
    """A frame arrived whole but its checksum does not match."""


class UnknownCompartment(HardwareError, LookupError):
    """A compartment number that this cabinet does not have."""


class ConfigurationError(HardwareError, ValueError):
    """The driver was given a wiring it cannot work with."""


class CardDataError(ProtocolError):
    """A card file is malformed (TLV, dates, certificate); the message names the field."""
