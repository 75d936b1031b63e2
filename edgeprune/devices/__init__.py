"""Profiling devices. A new kind is one module defining a ``@register_device`` Device subclass plus one import here."""

from edgeprune.devices.base import DEVICES, BenchSpec, Device, open_device, register_device
from edgeprune.devices.host import HostDevice

__all__ = ["DEVICES", "BenchSpec", "Device", "HostDevice", "open_device", "register_device"]
