"""The DNS decoding path never fails except by Malformed, whatever arrives:
random bytes, and valid packets with bytes changed, cut or repeated."""

import struct

from dnslib import AAAA, CNAME, QTYPE, RR, A, DNSRecord
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bandix.collect.dnsparse import Malformed, Segment, TcpStreams, parse_dns, parse_l3
from bandix.store.dns import DnsStore

FUZZ = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def valid_response() -> bytes:
    q = DNSRecord.question("www.example.test", "A")
    r = q.reply()
    r.add_answer(RR("www.example.test", QTYPE.CNAME, rdata=CNAME("edge.example.test"), ttl=60))
    r.add_answer(RR("edge.example.test", QTYPE.A, rdata=A("10.0.0.1"), ttl=60))
    r.add_answer(RR("edge.example.test", QTYPE.AAAA, rdata=AAAA("2001:db8::1"), ttl=60))
    return r.pack()


VALID = valid_response()


def ipv4_udp(payload: bytes) -> bytes:
    total = 28 + len(payload)
    return (struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0, 0, 64, 17, 0, bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
            + struct.pack("!HHHH", 53, 5353, 8 + len(payload), 0) + payload)


def decode_all(data: bytes, family: int, store: DnsStore, streams: TcpStreams) -> None:
    """What the collector does with one event; Malformed is the only failure allowed."""
    try:
        seg = parse_l3(data, family)
        for payload in streams.feed(seg) if seg.transport == "tcp" else [seg.payload]:
            msg = parse_dns(payload)
            rec = store.add(1, 1, "02:00:00:00:00:01", seg, msg, payload)
            store.record_json(rec)
    except Malformed:
        pass


def test_the_valid_answer_decodes():
    msg = parse_dns(VALID)
    assert (msg.qname, msg.qtype, msg.is_response, msg.response_ips) == (
        "www.example.test.", 1, True, ["10.0.0.1", "2001:db8::1"])


@FUZZ
@given(st.binary(max_size=600), st.sampled_from([4, 6, 5]))
def test_random_bytes(data, family):
    decode_all(data, family, DnsStore(50), TcpStreams())


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), max_size=8),
       st.integers(0, len(VALID)))
def test_mutated_answers(changes, cut):
    data = bytearray(VALID)
    for at, value in changes:
        data[at] = value
    decode_all(ipv4_udp(bytes(data[:cut])), 4, DnsStore(50), TcpStreams())
    try:
        parse_dns(bytes(data[:cut]))
    except Malformed:
        pass


@FUZZ
@given(st.lists(st.binary(max_size=80), max_size=10))
def test_tcp_streams_take_any_segments(chunks):
    streams = TcpStreams(max_streams=4)
    for chunk in chunks:
        seg = Segment("10.0.0.1", "10.0.0.2", 53, 4000, "tcp", chunk)
        try:
            for message in streams.feed(seg):
                parse_dns(message)
        except Malformed:
            pass


def test_compression_loop_is_refused():
    loop = b"\x12\x34\x81\x80\x00\x01\x00\x00\x00\x00\x00\x00" + b"\xc0\x0c"
    try:
        parse_dns(loop)
    except Malformed as exc:
        assert "loop" in str(exc) or "past" in str(exc)
    else:
        raise AssertionError("a pointer to itself was accepted")
