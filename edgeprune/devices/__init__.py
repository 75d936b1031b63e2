"""Profiling devices. A new kind is one module defining a ``@register_device`` Device subclass plus one import here."""

from edgeprune.devices.adb import AdbDevice
from edgeprune.devices.base import DEVICES, BenchSpec, Device, open_device, register_device
from edgeprune.devices.host import HostDevice
from edgeprune.devices.qemu_arm64 import QemuArm64Device
from edgeprune.devices.ssh import SshDevice

__all__ = ["DEVICES", "AdbDevice", "BenchSpec", "Device", "HostDevice", "QemuArm64Device", "SshDevice", "open_device",
           "register_device"]
