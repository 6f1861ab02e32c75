"""cryptography is optional: a QUIC Initial reaching a bandix without it turns QUIC
names off with one log line, and the hello reader (and with it flow collection)
goes on. The VMs of `make test-arch` run the same case end to end; here the
package is hidden from the import system."""

import logging
import struct
import sys

import bandix.collect
from bandix.collect.analytics import FlowAnalytics
from bandix.collect.packets import EVENT

INITIAL = bytes([0xC3, 0, 0, 0, 1, 8]) + bytes(range(8)) + b"\0\0" + bytes(1200 - 16)  # QUIC v1 Initial


def hello_event(payload: bytes) -> bytes:
    """A hello ring event: a UDP datagram from a LAN device to port 443."""
    udp = struct.pack("!HHHH", 40000, 443, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                     bytes([192, 168, 77, 11]), bytes([198, 51, 100, 10])) + udp
    return EVENT.pack(1, 2, len(ip), len(ip), 1, 4, bytes.fromhex("02bd00000001")) + ip


def test_quic_initial_without_cryptography(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "bandix.collect.quic", None)  # `import` raises ImportError
    monkeypatch.delattr(bandix.collect, "quic", raising=False)
    collector = FlowAnalytics.__new__(FlowAnalytics)  # only the hello path: no maps, no threads
    collector._quic, collector._quic_missing = None, False
    collector.hellos_parsed = collector.hellos_unparsed = 0
    with caplog.at_level(logging.WARNING, logger="bandix.collect.analytics"):
        for _ in range(3):
            collector.on_hello(hello_event(INITIAL))
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and warnings[0].startswith("QUIC server names are off: ")
    assert "install cryptography" in warnings[0]
    assert (collector.hellos_parsed, collector.hellos_unparsed) == (0, 0)
