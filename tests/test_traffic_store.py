"""Rates, totals, resets and the aggregate computed by the traffic store."""

from bandix.store.traffic import TrafficStore

A = "02:00:00:00:00:0a"
B = "02:00:00:00:00:0b"


def counters(lrx=0, ltx=0, wrx=0, wtx=0, packets=1):
    return [lrx, packets, ltx, packets, wrx, packets, wtx, packets]


def test_first_reading_has_no_rate_then_rates_follow_deltas_over_monotonic_time():
    store = TrafficStore(10)
    store.update(1_000, 100.0, {A: counters(wrx=5_000)})
    assert store.devices()[0].rates == (0, 0, 0, 0)
    store.update(3_000, 102.0, {A: counters(wrx=9_000, wtx=400)})
    dev = store.devices()[0]
    assert dev.rates == (0, 0, 2_000, 200)
    assert dev.counters[4] == 9_000


def test_wall_clock_step_does_not_change_the_rate():
    store = TrafficStore(10)
    store.update(1_000, 100.0, {A: counters()})
    store.update(-50_000, 101.0, {A: counters(ltx=1_000)})  # wall clock stepped back
    assert store.devices()[0].rates[1] == 1_000


def test_device_appearing_later_counts_from_zero():
    store = TrafficStore(10)
    store.update(1_000, 100.0, {A: counters()})
    store.update(2_000, 101.0, {A: counters(), B: counters(lrx=300)})
    by_mac = {d.mac: d for d in store.devices()}
    assert by_mac[B].rates == (300, 0, 0, 0)


def test_counter_restart_is_a_reset_not_a_negative_rate():
    store = TrafficStore(10)
    store.update(1_000, 100.0, {A: counters(wrx=10_000)})
    store.update(2_000, 101.0, {A: counters(wrx=700)})
    assert store.devices()[0].rates[2] == 700


def test_aggregate_is_the_sum_of_devices_and_rows_are_kept_per_device():
    store = TrafficStore(10)
    store.update(1_000, 100.0, {A: counters(), B: counters()})
    store.update(2_000, 101.0, {A: counters(wrx=100, ltx=7), B: counters(wrx=50, lrx=3)})
    agg = store.rows(None)[-1]
    assert agg == [2_000, 153, 7, 3, 7, 150, 0, 153, 7, 3, 7, 150, 0]
    assert store.rows(A)[-1][5] == 100
    assert len(store.rows(A)) == 2
    assert store.rows("02:00:00:00:00:ff") is None


def test_last_online_moves_only_with_traffic():
    store = TrafficStore(10)
    store.update(1_000, 100.0, {A: counters(wrx=1)})
    assert store.devices()[0].last_online_ms == 0  # pinned history: when it was active is unknown
    store.update(2_000, 101.0, {A: counters(wrx=2, packets=2)})
    store.update(3_000, 102.0, {A: counters(wrx=2, packets=2)})
    assert store.devices()[0].last_online_ms == 2_000


def test_device_missing_from_a_reading_keeps_totals_with_zero_rate():
    store = TrafficStore(10)
    store.update(1_000, 100.0, {A: counters(wrx=10)})
    store.update(2_000, 101.0, {A: counters(wrx=20)})
    store.update(3_000, 102.0, {})
    dev = store.devices()[0]
    assert dev.rates == (0, 0, 0, 0) and dev.counters[4] == 20
    assert store.rows(A)[-1][11] == 20
