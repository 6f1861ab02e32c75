"""The neighbour table's listed address and its change counter, which tells
the dashboard when to send the device list again (and when to copy
confirmation times)."""

from bandix.collect.neighbours import NeighbourTable

A, B = "02:00:00:00:00:0a", "02:00:00:00:00:0b"


def test_the_version_moves_exactly_when_a_listed_address_changes():
    t = NeighbourTable({1})
    seen = []

    def learn(mac: str, ip: str, now: float) -> None:
        t._learn(mac, ip, now, confirmed=now)
        seen.append(t.addresses_version)

    learn(A, "fe80::a", 1)  # first address: listed
    learn(A, "fe80::a", 2)  # refreshed: same listing
    learn(A, "2001:db8::a", 3)  # a global IPv6 wins over link-local
    learn(A, "fe80::a", 4)  # a newer link-local does not
    learn(A, "192.168.1.10", 5)  # IPv4 wins over IPv6
    learn(A, "192.168.1.10", 6)
    learn(A, "192.168.1.11", 7)  # the newest IPv4 is listed
    learn(A, "192.168.1.11", 8)
    learn(B, "192.168.1.12", 9)  # a new device
    learn(B, "192.168.1.11", 10)  # the address moves to B: A lists .10 again, B the newer .11 (two changes)
    assert seen == [1, 1, 2, 2, 3, 3, 4, 4, 5, 7]
    assert t.summary() == {A: ("192.168.1.10", 8), B: ("192.168.1.11", 10)}
    assert t.shown(A) == ("192.168.1.10", 8) and t.shown("02:00:00:00:00:0c") == ("", 0.0)
    assert t.confirmed_ms() == {A: 8000, B: 10000}


def test_the_confirmed_version_moves_exactly_when_a_confirmation_is_newer():
    t = NeighbourTable({1})
    seen = []
    for now, confirmed in ((1, 1.0), (2, 1.0), (3, 0.5), (4, 2.5), (5, 0.0)):
        t._learn(A, "192.168.1.10", now, confirmed)
        seen.append((t.confirmed_version, t.confirmed_ms()[A]))
    assert seen == [(1, 1000), (1, 1000), (1, 1000), (2, 2500), (2, 2500)]
