"""Readings a 32-bit kernel can tear are read again, not believed."""

from bandix.collect.traffic import BELIEVE_AFTER, Reconciler

MAC = b"\x02\0\0\0\0\x01"


def reading(value: int) -> dict[bytes, list[int]]:
    return {MAC: [value] + [0] * 7}


def test_a_torn_high_word_is_replaced_by_the_reread():
    r = Reconciler()
    r.accept(reading(0xFFFF_FFF0), lambda: {})
    got = r.accept(reading(0x1_FFFF_FFF0 + 5), lambda: reading(0x1_0000_0010))  # +4 GiB, then sane
    assert got == reading(0x1_0000_0010)


def test_a_drop_that_stays_odd_is_skipped_until_it_persists():
    r = Reconciler()
    r.accept(reading(0x1_0000_0000), lambda: {})
    for _ in range(BELIEVE_AFTER - 1):
        assert r.accept(reading(0x10), lambda: reading(0x10)) == {}
    assert r.accept(reading(0x10), lambda: reading(0x10)) == reading(0x10)


def test_normal_growth_needs_no_reread():
    r = Reconciler()
    r.accept(reading(100), lambda: {})

    def fail():
        raise AssertionError("re-read without need")

    assert r.accept(reading(200), fail) == reading(200)
