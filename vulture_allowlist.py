"""Names `vulture` (make lint) reports as unused that are used from outside our code.

Each group says who calls them. Anything else vulture reports is dead: remove it.
"""

import hub.main
import panel.main
import sim.main
import sim.scenario_cli
from centinela import tag
from drivers.keypad_serial import _Protocol
from drivers.nfc import LoopbackUdpDevice
from drivers.sim_usb import SimHidBackend
from drivers.zones import ZonesDriver
from protocol.schema import LengthPrefixed
from sim.tui import _MaskCodes

# Console-script handlers, named as strings in centinela.cli.HANDLERS.
hub.main.run_hub
tag.run_tag
panel.main.run_panel
sim.main.run_sim
sim.scenario_cli.run_scenarios

# asyncio calls a Protocol's callbacks.
_Protocol.data_received
_Protocol.eof_received
_Protocol.connection_lost

# nfcpy's UDP device: attributes and hooks nfcpy's own code reads and calls.
LoopbackUdpDevice._vendor_name
LoopbackUdpDevice._device_name
LoopbackUdpDevice._chipset_name
LoopbackUdpDevice._create_socket
LoopbackUdpDevice._bind_socket
LoopbackUdpDevice.rcvd_data
LoopbackUdpDevice.sent_data

# pyusb calls its backend's methods.
SimHidBackend.enumerate_devices
SimHidBackend.get_device_descriptor
SimHidBackend.get_configuration_descriptor
SimHidBackend.get_interface_descriptor
SimHidBackend.get_endpoint_descriptor
SimHidBackend.open_device
SimHidBackend.close_device
SimHidBackend.get_configuration
SimHidBackend.intr_read

# construct calls a Construct's size and compiler hooks.
LengthPrefixed._sizeof
LengthPrefixed._emitparse
LengthPrefixed._emitbuild

# prompt_toolkit calls a Processor's transformation.
_MaskCodes.apply_transformation

# The strobe output's state, as siren_on is the siren's (tests and the simulator read them).
ZonesDriver.strobe_on

# Attributes that libraries read: nfcpy's target, gpiozero's callbacks, aiomqtt's limit,
# paho's MQTT 5 properties, argparse's parser settings.
_.sel_req
_.when_activated
_.when_deactivated
_.pending_calls_threshold
_.SessionExpiryInterval
_.allow_abbrev

# A prompt_toolkit key binding (registered by its decorator).
_._quit

# Arguments a signature must have because a caller or a library passes them.
_.exc_type  # __aexit__
_.tb  # __aexit__
_.time_to_return  # nfcpy's _bind_socket hook
_.force  # smbus2's transfer methods, which the simulated bus stands in for
_.dev_handle  # pyusb's IBackend methods
_.config_value
_.wIndex
