/* SPDX-License-Identifier: MIT */
/*
 * Layouts shared by the TC programs and the daemon.
 *
 * The daemon mirrors these structs in bandix/bpf/layout.py; a unit test
 * compares that mirror with the BTF of the built object, so a change here
 * without a change there fails the tests. Bump BANDIX_LAYOUT_VERSION whenever
 * a pinned map changes meaning: the daemon then drops the old pins instead of
 * reusing counters it would misread.
 */
#ifndef BANDIX_H
#define BANDIX_H

#define BANDIX_LAYOUT_VERSION 3

/* Sizes of the maps (entries). */
#define BANDIX_SLOTS 1024      /* dev_slots: per-CPU open-addressing table */
#define BANDIX_SLOT_PROBES 8   /* slots tried before falling back to dev_overflow */
#define BANDIX_OVERFLOW 2048   /* dev_overflow: per-CPU hash for the rest */
#define BANDIX_MAX_PREFIXES 32 /* LAN prefixes per address family */

/* Index into bandix_dev_stats.c: (zone << 1) | direction. */
#define BANDIX_DIR_RX 0 /* to the device (egress of the LAN interface) */
#define BANDIX_DIR_TX 1 /* from the device (ingress of the LAN interface) */
#define BANDIX_ZONE_LAN 0
#define BANDIX_ZONE_WAN 1

/* Slots of the health map. */
enum bandix_health {
	BANDIX_HEALTH_DEV_MAP_FULL = 0, /* a device fit neither dev_slots nor dev_overflow */
	BANDIX_HEALTH_TRUNCATED = 1,    /* IP ethertype but header shorter than IP */
	BANDIX_HEALTH_LIMIT_DROPS = 2,  /* packets dropped by a rate limit */
	BANDIX_HEALTH_DNS_LOST = 3,     /* DNS packets the ring buffer had no room for */
	BANDIX_HEALTH_FLOW_NEW = 4,     /* flows added to `flows` (the LRU may evict others for them) */
	BANDIX_HEALTH_FLOW_FAILED = 5,  /* flows that could not be added: their packets are not in `flows` */
	BANDIX_HEALTH_HELLO_LOST = 6,   /* TLS/QUIC hellos the ring buffer had no room for */
	BANDIX_HEALTH_SLOTS = 8,
};

struct bandix_mac_key {
	__u8 mac[6];
	__u16 pad; /* always zero: the hash covers all 8 bytes */
};

struct bandix_counter {
	__u64 bytes;   /* L3 bytes: skb->len minus Ethernet and in-data VLAN headers */
	__u64 packets; /* one per skb, as the interface's own counters */
};

struct bandix_dev_stats {
	struct bandix_counter c[4]; /* lan_rx, lan_tx, wan_rx, wan_tx */
};

/*
 * One slot of dev_slots. Each CPU claims slots in its own copy of the array,
 * so the same device may sit at different slots on different CPUs, or in
 * dev_overflow on one of them: the daemon sums every copy by MAC.
 */
struct bandix_slot {
	__u8 mac[6];
	__u16 used; /* 1 once a device claimed the slot on this CPU */
	struct bandix_dev_stats stats;
};

/*
 * The LAN prefixes, scanned linearly. A router has a handful of them, and a
 * scan of a few masked compares costs a fraction of an LPM-trie lookup on the
 * per-packet path (see bpf/README.md). Addresses and masks are in network
 * byte order, as in the packet.
 */
struct bandix_prefix_v4 {
	__u32 addr;
	__u32 mask;
};

struct bandix_prefix_v6 {
	__u32 addr[4];
	__u32 mask[4];
};

struct bandix_lan {
	__u32 n_v4;
	__u32 n_v6;
	struct bandix_prefix_v4 v4[BANDIX_MAX_PREFIXES];
	struct bandix_prefix_v6 v6[BANDIX_MAX_PREFIXES];
};

/*
 * Slots of the control map. The daemon writes a new prefix table into the
 * inactive slot of `lan` and then flips CONTROL_LAN_ACTIVE, so a packet never
 * sees a half-written table.
 */
enum bandix_control {
	BANDIX_CONTROL_LAYOUT = 0,     /* BANDIX_LAYOUT_VERSION of the pins */
	BANDIX_CONTROL_LAN_ACTIVE = 1, /* 0 or 1: the slot of `lan` in use */
	BANDIX_CONTROL_GENERATION_LO = 2, /* a random id of this set of pins, so */
	BANDIX_CONTROL_GENERATION_HI = 3, /* saved history knows if counters reset */
	BANDIX_CONTROL_LIMITS = 4,     /* entries in `limits`: 0 skips the lookup */
	BANDIX_CONTROL_DNS = 5,        /* 1: copy DNS packets to `dns_events` */
	BANDIX_CONTROL_FLOWS = 6,      /* 1: count 5-tuple flows and copy hellos to `hello_events` */
	BANDIX_CONTROL_SLOTS = 8,
};

#define BANDIX_MAX_LIMITS 1024
#define BANDIX_DNS_CAPTURE 2048        /* bytes of a DNS packet copied, from its IP header */
/* Ring sizes: a reader is woken at once and drains between its polls, so a ring only
 * holds a burst; 1 MB is ~7,000 DNS queries. Both rings are mapped into the daemon
 * (twice, for wrap-around) and count in its RSS. */
#define BANDIX_DNS_RING (1024 * 1024)  /* bytes of ring buffer for DNS events */
#define BANDIX_HELLO_RING (256 * 1024) /* bytes of ring buffer for TLS/QUIC hellos (~200 QUIC Initials) */
#define BANDIX_FLOWS 16384             /* default entries of `flows`; the daemon may set another */
#define BANDIX_HELLO_PACKETS 8         /* a flow's first packets from the device checked for a hello */
#define BANDIX_MAX_IPV6_EXT 4          /* IPv6 extension headers skipped to find the ports */

/*
 * A packet for the daemon, copied from its IP header on, up to
 * BANDIX_DNS_CAPTURE bytes; the daemon parses IP, UDP/TCP and what they carry
 * itself. `dns_events` gets DNS (UDP or TCP, port 53, either direction);
 * `hello_events` gets what may open a TLS session (a TCP segment that starts
 * a ClientHello record) or a QUIC connection (a long-header UDP datagram to
 * port 443), among a flow's first packets from the device.
 */
struct bandix_packet_event {
	__u64 ts_ns;     /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u32 ifindex;
	__u16 len;       /* bytes in data */
	__u16 orig_len;  /* the packet's L3 length */
	__u8 dir;        /* BANDIX_DIR_RX: to the device, BANDIX_DIR_TX: from it */
	__u8 family;     /* 4 or 6 */
	__u8 mac[6];     /* the device */
	__u8 data[BANDIX_DNS_CAPTURE];
};

/*
 * A 5-tuple flow and its direction: BANDIX_DIR_TX for packets from the
 * device, BANDIX_DIR_RX for packets to it. Addresses are in network order as
 * in the packet; IPv4 uses the first word. Ports are zero for protocols
 * without them and for later fragments.
 */
struct bandix_flow_key {
	__u8 family; /* 4 or 6 */
	__u8 proto;
	__u8 dir;
	__u8 pad;    /* always zero: the hash covers all 40 bytes */
	__be16 sport;
	__be16 dport;
	__u32 saddr[4];
	__u32 daddr[4];
};

/*
 * A flow's counters. No timestamp: a clock read per packet would cost more
 * than the rest of the update, and the daemon sees a flow is idle when its
 * packet count stops moving between reads.
 */
struct bandix_flow {
	__u64 bytes;   /* L3 bytes, as the device counters */
	__u64 packets;
	__u8 mac[6];   /* the device */
	__u16 pad;
};

#define BANDIX_NSEC_PER_SEC 1000000000ULL

/*
 * A device's WAN policy: a token bucket per direction and a data quota. Tokens
 * are kept in byte-nanoseconds (bytes × 10^9), so a refill is elapsed_ns ×
 * rate with no division and no rounding loss between closely spaced packets.
 * A refill counts at most one second, so elapsed × rate stays below 2^64 up to
 * rates of 18 GB/s (144 Gbit/s), and a bucket can be up to 18 GB deep. The
 * daemon writes flags, rates, bursts and the quota; tokens, stamp and
 * quota_used are the programs' state (the daemon carries quota_used over when
 * it rewrites an entry, and zeroes it when a period starts).
 *
 * The entry keyed BANDIX_DEFAULT_KEY is the policy of every device without
 * an entry of its own: on a device's first WAN packet the programs copy it
 * to the device's MAC (flag BANDIX_LIMIT_COPY), so each device gets buckets
 * and a quota of its own from that packet on. Devices exempt from the default
 * carry an entry of their own, all zero when nothing else applies.
 */
#define BANDIX_LIMIT_COPY 1       /* made by the programs from the default entry */
#define BANDIX_QUOTA_RX 2         /* quota_used counts WAN bytes to the device */
#define BANDIX_QUOTA_TX 4         /* quota_used counts WAN bytes from the device */
#define BANDIX_QUOTA_BLOCK 8      /* used up: drop WAN traffic (else: quota_rate) */
#define BANDIX_DEFAULT_KEY_PAD 1  /* the default entry: MAC 00:00:00:00:00:00, pad 1 */

struct bandix_limit {
	struct bpf_spin_lock lock;
	__u32 flags;     /* BANDIX_LIMIT_*, BANDIX_QUOTA_* */
	__u64 rate[2];   /* bytes/s by direction (BANDIX_DIR_RX, _TX); 0 = no limit */
	__u64 burst[2];  /* bucket depth, byte-nanoseconds */
	__u64 tokens[2]; /* byte-nanoseconds available */
	__u64 stamp[2];  /* bpf_ktime_get_ns() of the last refill */
	__u64 quota_bytes;   /* with BANDIX_QUOTA_RX and/or _TX set; 0 otherwise */
	__u64 quota_used;    /* L3 WAN bytes passed this period, as the device counters count them */
	__u64 quota_rate[2]; /* once used up, unless BANDIX_QUOTA_BLOCK: rate and depth in force */
	__u64 quota_burst[2];
	__u64 period_start;  /* Unix seconds the quota's period began (the daemon's bookkeeping) */
};

#endif
