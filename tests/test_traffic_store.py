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


# -- history, persistence and forgetting --------------------------------------

from bandix.store.levels import Level  # noqa: E402
from bandix.store.traffic import CLOCK_HOLD_S  # noqa: E402

TINY = (Level("day", 1, 5), Level("year", 2, 5))


def test_all_devices_series_gets_the_per_second_sums():
    store = TrafficStore(10, TINY, fresh_counters=True)
    for t in range(4):
        store.update(1_000 * (10 + t), 100.0 + t, {A: counters(wrx=100 * t), B: counters(wrx=50 * t * t)})
    rows = store.level_rows("day", None, 14_000)
    # second 11: A +100, B +50; second 12: A +100, B +150; second 13: A +100, B +250
    assert [r[13] for r in rows if r[0] >= 11_000] == [150, 250]


def test_lan_bytes_go_to_usage_rows_and_never_to_the_api_rows():
    from bandix.store import usage

    store = TrafficStore(10, (Level("day", 1, 50), Level("year", 2, 50)), fresh_counters=True)
    seen = {A: [0] * 4, B: [0] * 4}  # lan rx, lan tx, wan rx, wan tx
    for t in range(6):
        seen[A] = [seen[A][0] + 10 * t, seen[A][1] + 3, seen[A][2] + 100, seen[A][3]]
        seen[B] = [seen[B][0] + 7, seen[B][1] + 20 * t, 0, 0]  # B: LAN traffic only
        store.update(1_000 * (10 + t), 100.0 + t, {m: counters(*c) for m, c in seen.items()})
    # Buckets 10..14 closed. B has no WAN row at all; its LAN bytes are in the usage rows.
    assert store.level_rows("day", B, 16_000) == []
    assert store.level_usage("day", B, 16_000) == [[1_000 * s, 0, 0, 7, 20 * (s - 10)] for s in range(10, 15)]
    assert [r[1:] for r in store.level_usage("day", A, 16_000)] == [[100, 0, 10 * (s - 10), 3] for s in range(10, 15)]
    assert [len(r) for r in store.level_rows("day", A, 16_000)] == [15] * 5  # the spec's rows
    assert [r[3:] for r in store.level_usage("day", None, 16_000)] == [[10 * (s - 10) + 7, 3 + 20 * (s - 10)]
                                                                     for s in range(10, 15)]
    lan = usage.ranking(store, 11_000, 15_000, "lan")
    assert [(d["mac"], d["rx_bytes"], d["tx_bytes"]) for d in lan["devices"]] == [
        (B, 28, 20 * (1 + 2 + 3 + 4)), (A, 10 * (1 + 2 + 3 + 4), 12)]
    both = usage.ranking(store, 11_000, 15_000, "all")
    assert [(d["mac"], d["total_bytes"]) for d in both["devices"]] == [(A, 400 + 100 + 12), (B, 28 + 200)]
    assert [d["mac"] for d in usage.ranking(store, 11_000, 15_000)["devices"]] == [A]  # wan


def test_restore_with_the_same_counters_continues_deltas():
    store = TrafficStore(10, TINY, fresh_counters=True)
    store.update(10_000, 100.0, {A: counters(wtx=1_000)})
    store.update(11_000, 101.0, {A: counters(wtx=3_000)})
    snap = store.snapshot()
    again = TrafficStore(10, TINY)
    again.restore(snap, same_counters=True, same_boot=True)
    again.update(15_000, 105.0, {A: counters(wtx=7_000)})  # 4 s later, 4000 bytes more
    dev = again.devices()[0]
    assert dev.counters[6] == 7_000 and dev.rates[3] == 1_000
    assert again.rows(A)[-1][12] == 7_000


def test_restore_after_lost_counters_carries_totals_over():
    store = TrafficStore(10, TINY, fresh_counters=True)
    store.update(10_000, 100.0, {A: counters(wtx=5_000, lrx=7)})
    snap = store.snapshot()
    again = TrafficStore(10, TINY, fresh_counters=True)
    again.restore(snap, same_counters=False, same_boot=False)
    again.update(12_000, 3.0, {A: counters(wtx=200, lrx=1)})  # the kernel started again from zero
    dev = again.devices()[0]
    assert dev.counters[6] == 5_200 and dev.counters[0] == 8


def test_clock_behind_the_saved_history_holds_it_back_without_losing_bytes():
    store = TrafficStore(10, TINY, fresh_counters=True)
    store.update(1_000_000, 100.0, {A: counters(wtx=10)})
    snap = store.snapshot()
    again = TrafficStore(10, TINY)
    again.restore(snap, same_counters=True, same_boot=False)
    again.update(5_000, 200.0, {A: counters(wtx=60)})  # booted with an old clock
    again.update(6_000, 201.0, {A: counters(wtx=80)})
    assert len(again.rows(A)) == 1  # only the restored sample: nothing stamped in 1970
    again.update(1_000_500, 230.0, {A: counters(wtx=100)})  # NTP caught up
    assert again.rows(A)[-1][0] == 1_000_500
    again.update(1_003_000, 231.0, {A: counters(wtx=100)})
    # Every byte, 0 → 100, once: 10 before the save, 90 after (50 + 20 of the hold, then 20).
    assert sum(r[14] for r in again.level_rows("day", A, 1_003_000)) == 100


def test_clock_that_never_catches_up_is_believed_after_the_hold():
    store = TrafficStore(10, TINY, fresh_counters=True)
    store.update(1_000_000, 100.0, {A: counters()})
    again = TrafficStore(10, TINY)
    again.restore(store.snapshot(), same_counters=True, same_boot=False)
    again.update(5_000, 200.0, {A: counters(wtx=5)})
    again.update(6_000, 200.0 + CLOCK_HOLD_S + 1, {A: counters(wtx=9)})
    assert again.rows(A)[-1][0] == 6_000
    assert all(r[0] <= 6_000 for r in again.rows(A))


def test_idle_devices_are_forgotten_after_the_longest_retention():
    store = TrafficStore(10, TINY, fresh_counters=True)  # longest retention: 2 s × 5 = 10 s
    store.update(100_000, 1.0, {A: counters(wrx=1), B: counters(wrx=1)})
    store.update(170_000, 71.0, {A: counters(wrx=1), B: counters(wrx=2, packets=2)})
    store.update(250_000, 151.0, {B: counters(wrx=3, packets=3)})  # A's kernel slots were freed
    assert [d.mac for d in store.devices()] == [B]
    assert store.take_forgotten() == [A] and store.take_forgotten() == []
    assert store.snapshot().forgotten == [A]


def test_live_numbers_in_store_order_with_a_later_confirmation():
    store = TrafficStore(10)
    store.update(1_000, 100.0, {B: counters(wrx=1), A: counters(lrx=100, ltx=50, wrx=1_000, wtx=200)})
    store.update(2_000, 101.0, {A: counters(lrx=300, ltx=50, wrx=4_000, wtx=500, packets=2), B: counters(wrx=1)})
    # wan rx/tx rate, lan rx/tx rate, wan rx/tx bytes, lan bytes, last online: in the order devices came
    assert store.live_numbers({}) == ([B, A], [0, 0, 0, 0, 1, 0, 0, 0, 3_000, 300, 200, 0, 4_000, 500, 350, 2_000])
    # A confirmation seen elsewhere counts when it is later, never when it is earlier.
    assert store.live_numbers({A: 1_500, B: 1_800})[1][7::8] == [1_800, 2_000]


def test_live_numbers_asked_for_are_built_by_the_next_reading_exactly_as_asked():
    store = TrafficStore(10, TINY, fresh_counters=True)  # longest retention: 10 s
    confirmed: dict[str, int] = {}
    store.update(100_000, 1.0, {A: counters(wrx=1)})
    cold = store.live_numbers(confirmed)  # not asked before this reading: built now; asks for the next
    assert cold == ([A], [0, 0, 0, 0, 1, 0, 0, 100_000]) and store.live_numbers(confirmed)[1] is not cold[1]
    store.update(101_000, 2.0, {A: counters(wrx=5, packets=2), B: counters(ltx=7)})
    built = store.live_numbers(confirmed)
    assert built == ([A, B], [4, 0, 0, 0, 5, 0, 0, 101_000, 0, 0, 0, 7, 0, 0, 7, 101_000])
    assert store.live_numbers(confirmed)[1] is built[1]  # the reading's own list, handed out, not built again
    # Other confirmation times are taken at once, not the reading's.
    assert store.live_numbers({B: 150_000})[1][7::8] == [101_000, 150_000]
    # A device forgotten by the reading that built the numbers is not in them.
    store.update(170_000, 71.0, {B: counters(ltx=8, packets=2)})
    assert store.take_forgotten() == [A]
    assert store.live_numbers(confirmed) == ([B], [0, 0, 0, 0, 0, 0, 8, 170_000])


def test_listeners_run_after_each_reading_outside_the_lock_and_a_failing_one_stops_nothing():
    store = TrafficStore(10)
    seen = []

    def broken() -> None:
        raise RuntimeError("a reader's bug")

    def reader() -> None:
        if store._lock.locked():  # taking it again would hang the test instead of failing it
            seen.append("called inside the lock")
            return
        seen.append((store.readings, store.live_numbers({})[1][4]))

    store.add_listener(broken)
    store.add_listener(reader)
    store.update(1_000, 100.0, {A: counters(wrx=10)})
    store.update(2_000, 101.0, {A: counters(wrx=30)})
    assert seen == [(1, 10), (2, 30)]
