"""Names `vulture` (make lint) reports as unused that are used from outside our code.

Each group says who calls them. Anything else vulture reports is dead: remove it.
"""

import sqlite3

from paho.mqtt.properties import Properties

import cloud.main
import hub.main
import panel.main
import sim.main
import sim.scenario_cli
from centinela import tag
from cloud.service import _Server
from drivers.keypad_serial import _Protocol
from drivers.nfc import LoopbackUdpDevice
from drivers.sim_usb import SimHidBackend
from drivers.zones import ZonesDriver
from protocol.schema import LengthPrefixed
from sim.tui import _MaskCodes
from tests.arc_receiver import ArcReceiver
from tests.test_cloud_mail import Inbox

# Console-script handlers, named as strings in centinela.cli.HANDLERS.
hub.main.run_hub
tag.run_tag
panel.main.run_panel
sim.main.run_sim
sim.scenario_cli.run_scenarios
cloud.main.run_cloud

# uvicorn's Server hooks, overridden or set so the service owns signals and shutdown.
_Server.capture_signals
_Server.should_exit

# sqlite3 reads a connection's row_factory.
sqlite3.Connection.row_factory

# aiosmtpd calls a handler's handle_DATA for each message (the tests' SMTP server).
Inbox.handle_DATA

# pysiaalarm's server loop reads shutdown_flag (the tests' receiver resets it).
ArcReceiver.shutdown_flag

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

# paho reads the CONNECT properties it is given (the links' announced maximum packet size).
Properties.MaximumPacketSize

# The file protocol the WebM muxer calls on its output, and PyAV stream settings it reads.
_.writable
_.seekable
_.bit_rate
_.layout
_.sample_rate
_.pix_fmt
_.pict_type
