// SPDX-License-Identifier: MIT
/*
 * bandix: per-device accounting on the LAN interface.
 *
 * Ingress of the LAN interface carries what a device sends (tx), egress what it
 * receives (rx). The device is the frame's source MAC on ingress and its
 * destination MAC on egress; the peer's IP address decides LAN or WAN by
 * matching it against the LAN prefixes the daemon keeps in `lan`. WAN packets
 * over a device's rate limit are dropped; nothing else is ever dropped or
 * changed, and the programs return TC_ACT_UNSPEC so the filters after ours
 * (qosify, SQM, ...) still run.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "bandix.h"

#define MAX_VLAN_TAGS 2

/*
 * Views of the headers with their natural alignment, so the compiler emits
 * 16- and 32-bit loads instead of byte loads. The Ethernet header starts two
 * bytes into an aligned buffer (NET_IP_ALIGN), which makes the IP header
 * 4-byte aligned, with or without VLAN tags in front of it.
 */
struct eth_view {
	__u16 dst[3];
	__u16 src[3];
	__be16 proto;
};

struct vlan_view {
	__be16 tci;
	__be16 proto;
};

struct ipv4_view {
	__u8 ver_ihl;
	__u8 tos;
	__be16 tot_len;
	__be16 id;
	__be16 frag_off;
	__u8 ttl;
	__u8 protocol;
	__sum16 check;
	__u32 saddr;
	__u32 daddr;
};

struct ipv6_view {
	__be32 ver_tc_flow;
	__be16 payload_len;
	__u8 nexthdr;
	__u8 hop_limit;
	__u32 saddr[4];
	__u32 daddr[4];
};

/*
 * Per-device counters live in a per-CPU array used as an open-addressing hash
 * table: its lookups are inlined by the verifier, which makes them several
 * times cheaper than a hash-map lookup on the per-packet path. A device whose
 * probe sequence is full goes to the per-CPU hash dev_overflow instead.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BANDIX_SLOTS);
	__type(key, __u32);
	__type(value, struct bandix_slot);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dev_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, BANDIX_OVERFLOW);
	__type(key, struct bandix_mac_key);
	__type(value, struct bandix_dev_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dev_overflow SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct bandix_lan);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lan SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BANDIX_CONTROL_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} control SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BANDIX_MAX_LIMITS);
	__type(key, struct bandix_mac_key);
	__type(value, struct bandix_limit);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} limits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, BANDIX_DNS_RING);
} dns_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, BANDIX_HELLO_RING);
} hello_events SEC(".maps");

/* Where an event is built before it is copied into a ring at its true size. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bandix_packet_event);
} event_scratch SEC(".maps");

/*
 * 5-tuple flows. Not pinned: only the daemon that reads the deltas knows what
 * it has already counted. An LRU hash, so a full map drops the flow idle the
 * longest rather than the new one; the daemon derives evictions from
 * HEALTH_FLOW_NEW, the entries it finds and those it deleted itself.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, BANDIX_FLOWS);
	__type(key, struct bandix_flow_key);
	__type(value, struct bandix_flow);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BANDIX_HEALTH_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} health SEC(".maps");

static __always_inline void health_inc(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&health, &slot);

	if (v)
		*v += 1;
}

static __always_inline const struct bandix_lan *lan_table(void)
{
	__u32 slot = BANDIX_CONTROL_LAN_ACTIVE;
	__u32 *active = bpf_map_lookup_elem(&control, &slot);

	if (!active)
		return 0;
	slot = *active & 1;
	return bpf_map_lookup_elem(&lan, &slot);
}

static __always_inline int lan_has_v4(const struct bandix_lan *t, __u32 a)
{
	__u32 n = t->n_v4;

	for (__u32 i = 0; i < BANDIX_MAX_PREFIXES; i++) {
		if (i >= n)
			break;
		if (((a ^ t->v4[i].addr) & t->v4[i].mask) == 0)
			return 1;
	}
	return 0;
}

static __always_inline int lan_has_v6(const struct bandix_lan *t, const __u32 *a)
{
	__u32 n = t->n_v6;
	__u32 a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3];

	for (__u32 i = 0; i < BANDIX_MAX_PREFIXES; i++) {
		const struct bandix_prefix_v6 *p = &t->v6[i];

		if (i >= n)
			break;
		if ((((a0 ^ p->addr[0]) & p->mask[0]) | ((a1 ^ p->addr[1]) & p->mask[1]) |
		     ((a2 ^ p->addr[2]) & p->mask[2]) | ((a3 ^ p->addr[3]) & p->mask[3])) == 0)
			return 1;
	}
	return 0;
}

/*
 * Make the first `len` bytes directly readable. Headers normally sit in the
 * linear part already; only a rare non-linear skb pays for the pull.
 */
static __always_inline int ensure_linear(struct __sk_buff *skb, __u32 len)
{
	if ((void *)(long)skb->data + len <= (void *)(long)skb->data_end)
		return 0;
	if (skb->len < len)
		return -1;
	return bpf_skb_pull_data(skb, len);
}

/*
 * A fresh copy of the default entry for a device that has none: its own
 * buckets (full) and its own quota count (zero) from its first packet on.
 * Built field by field: the lock may not be copied.
 */
static __always_inline struct bandix_limit *adopt_default(struct bandix_mac_key *key, struct bandix_limit *def)
{
	struct bandix_limit fresh = {};

	fresh.flags = def->flags | BANDIX_LIMIT_COPY;
	fresh.quota_bytes = def->quota_bytes;
	fresh.period_start = def->period_start;
#pragma unroll
	for (int d = 0; d < 2; d++) {
		fresh.rate[d] = def->rate[d];
		fresh.burst[d] = fresh.tokens[d] = def->burst[d];
		fresh.quota_rate[d] = def->quota_rate[d];
		fresh.quota_burst[d] = def->quota_burst[d];
	}
	bpf_map_update_elem(&limits, key, &fresh, BPF_NOEXIST);

	struct bandix_limit *l = bpf_map_lookup_elem(&limits, key);

	return l ? l : def; /* the map is full: such devices share the default's buckets */
}

/* The device's WAN policy, or NULL when nothing limits it (the common case). */
static __always_inline struct bandix_limit *limit_of(const __u16 *mac)
{
	__u32 slot = BANDIX_CONTROL_LIMITS;
	__u32 *any = bpf_map_lookup_elem(&control, &slot);

	if (!any || !*any)
		return 0;

	struct bandix_mac_key key;
	__u16 *k = (__u16 *)&key;

	k[0] = mac[0];
	k[1] = mac[1];
	k[2] = mac[2];
	k[3] = 0;

	struct bandix_limit *l = bpf_map_lookup_elem(&limits, &key);

	if (l)
		return l;

	struct bandix_mac_key dkey = { .pad = BANDIX_DEFAULT_KEY_PAD };
	struct bandix_limit *def = bpf_map_lookup_elem(&limits, &dkey);

	return def ? adopt_default(&key, def) : 0;
}

/*
 * What the packet weighs against a limit: its L3 bytes, and for a GSO packet
 * the IP and transport headers each of its segments repeats on the wire, as
 * the kernel's qdiscs charge it. May pull headers: packet pointers are stale
 * afterwards.
 */
static __always_inline __u64 wire_cost(struct __sk_buff *skb, __u32 l2, int v6)
{
	__u64 len = skb->len - l2;
	__u32 segs = skb->gso_segs;
	__u32 hdr;
	__u8 proto;

	if (segs <= 1 || ensure_linear(skb, l2 + (v6 ? 40 : 60) + 20))
		return len;

	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;

	if (v6) {
		struct ipv6_view *ip6 = data + l2;

		if ((void *)(ip6 + 1) > data_end)
			return len;
		proto = ip6->nexthdr;
		hdr = sizeof(*ip6);
	} else {
		struct ipv4_view *ip = data + l2;

		if ((void *)(ip + 1) > data_end)
			return len;
		proto = ip->protocol;
		hdr = (ip->ver_ihl & 0x0f) * 4;
		if (hdr < sizeof(*ip))
			return len;
	}
	if (proto == 6 /* TCP */) {
		__u8 *doff = data + l2 + hdr + 12;

		if ((void *)(doff + 1) > data_end)
			return len;
		hdr += (*doff >> 4) * 4;
	} else if (proto == 17 /* UDP */) {
		hdr += 8;
	} else {
		return len;
	}
	return len + (__u64)(segs - 1) * hdr;
}

/*
 * Whether a WAN packet passes the device's policy: its quota first (used up:
 * dropped, or held to the quota's rates), then its token bucket. Only what
 * passes counts against the quota, in the bytes the device counters count.
 */
static __always_inline int police(struct __sk_buff *skb, struct bandix_limit *l, const int dir, __u32 l2, int v6)
{
	__u32 flags = l->flags;
	/* From the flags, next to the lock and rates: a rate alone never touches the quota's cache line. */
	int quota = flags & (BANDIX_QUOTA_RX | BANDIX_QUOTA_TX);

	if (!quota && !l->rate[dir])
		return 1;

	__u64 len = skb->len - l2;
	int bucket = l->rate[dir] || l->quota_rate[dir];
	/* Outside the lock: wire_cost() may pull headers, and a clock read is a helper call. */
	__u64 cost = bucket ? wire_cost(skb, l2, v6) * BANDIX_NSEC_PER_SEC : 0;
	__u64 now = bucket ? bpf_ktime_get_ns() : 0;
	int ok = 1;

	bpf_spin_lock(&l->lock);
	int spent = quota && l->quota_used >= l->quota_bytes;
	__u64 rate = spent ? l->quota_rate[dir] : l->rate[dir];

	if (spent && (flags & BANDIX_QUOTA_BLOCK)) {
		ok = 0;
	} else if (rate) {
		__u64 burst = spent ? l->quota_burst[dir] : l->burst[dir];
		__u64 elapsed = now - l->stamp[dir];

		if (elapsed > BANDIX_NSEC_PER_SEC)
			elapsed = BANDIX_NSEC_PER_SEC;
		__u64 tokens = l->tokens[dir] + elapsed * rate;

		if (tokens > burst)
			tokens = burst;
		ok = tokens >= cost;
		l->tokens[dir] = ok ? tokens - cost : tokens;
		l->stamp[dir] = now;
	}
	if (ok && quota && (flags & (BANDIX_QUOTA_RX << dir)))
		l->quota_used += len;
	bpf_spin_unlock(&l->lock);
	return ok;
}

/*
 * The offset of the L4 header behind an IPv6 header ending at `off`, skipping
 * up to BANDIX_MAX_IPV6_EXT extension headers (*proto: the next header on
 * entry, the L4 protocol on return); -1 when there is none to look at (a
 * later fragment, a header out of reach). Without extension headers, which
 * is nearly always, it costs no helper call.
 */
static __always_inline int ipv6_l4(struct __sk_buff *skb, __u32 off, __u8 *proto)
{
	__u8 next = *proto;

#pragma unroll
	for (int i = 0; i < BANDIX_MAX_IPV6_EXT; i++) {
		__u8 ext[2];

		if (next != 0 && next != 43 && next != 60 && next != 44) /* hop-by-hop, routing, dest, fragment */
			break;
		if (bpf_skb_load_bytes(skb, off, ext, 2))
			return -1;
		if (next == 44) {
			__be16 frag;

			if (bpf_skb_load_bytes(skb, off + 2, &frag, 2) || (frag & bpf_htons(0xfff8))) {
				*proto = ext[0];
				return -1;
			}
			off += 8;
		} else {
			off += (ext[1] + 1) * 8;
		}
		next = ext[0];
	}
	*proto = next;
	return off;
}

/* Copy a packet, from its IP header, into one of the ring buffers. */
static __always_inline void emit(void *ring, __u32 lost_slot, struct __sk_buff *skb, __u32 l2, int v6,
				 const int dir, const __u16 *mac)
{
	__u32 zero = 0;
	struct bandix_packet_event *e = bpf_map_lookup_elem(&event_scratch, &zero);

	if (!e)
		return;
	__u32 len = skb->len - l2;

	e->ts_ns = bpf_ktime_get_ns();
	e->ifindex = skb->ifindex;
	e->orig_len = len;
	e->dir = dir;
	e->family = v6 ? 6 : 4;
	__builtin_memcpy(e->mac, mac, 6);
	if (len > BANDIX_DNS_CAPTURE)
		len = BANDIX_DNS_CAPTURE;
	if (len < 20)
		return;
	/* The identity for 1..CAPTURE, written so the verifier sees those bounds. */
	len = ((len - 1) & (BANDIX_DNS_CAPTURE - 1)) + 1;
	if (bpf_skb_load_bytes(skb, l2, e->data, len))
		return;
	e->len = len;
	if (bpf_ringbuf_output(ring, e, __builtin_offsetof(struct bandix_packet_event, data) + len, 0))
		health_inc(lost_slot);
}

/* The offset of a TCP segment's payload, or -1 when it carries none. */
static __always_inline int tcp_payload(struct __sk_buff *skb, int l4)
{
	__u8 doff;

	if (bpf_skb_load_bytes(skb, l4 + 12, &doff, 1))
		return -1;
	l4 += (doff >> 4) * 4;
	return skb->len > (__u32)l4 ? l4 : -1;
}

/* Count a packet in its flow: the flow's packets before this one, or ~0 when it has no entry. */
static __always_inline __u64 count_flow(const struct bandix_flow_key *key, __u32 len, const __u16 *mac)
{
	struct bandix_flow *f = bpf_map_lookup_elem(&flows, key);

	if (!f) {
		struct bandix_flow fresh = { .bytes = len, .packets = 1 };

		__builtin_memcpy(fresh.mac, mac, 6);
		long err = bpf_map_update_elem(&flows, key, &fresh, BPF_NOEXIST);

		if (!err) {
			health_inc(BANDIX_HEALTH_FLOW_NEW);
			return 0;
		}
		f = err == -17 /* EEXIST: added meanwhile */ ? bpf_map_lookup_elem(&flows, key) : 0;
		if (!f) {
			health_inc(BANDIX_HEALTH_FLOW_FAILED);
			return ~0ULL;
		}
	}
	__u64 before = f->packets;

	__sync_fetch_and_add(&f->bytes, len);
	__sync_fetch_and_add(&f->packets, 1);
	return before;
}

/* A TLS ClientHello record at `payload` (content type, version major, handshake type)? */
static __always_inline int starts_client_hello(struct __sk_buff *skb, int payload)
{
	__u8 head[6];

	return payload >= 0 && !bpf_skb_load_bytes(skb, payload, head, 6) && head[0] == 0x16 &&
	       head[1] == 0x03 && head[5] == 0x01;
}

/*
 * What the daemon wants beyond the device counters: DNS packets, flows, and
 * the hellos that name a flow's server. The L4 header is found once for all.
 */
static __always_inline void inspect(struct __sk_buff *skb, __u32 l2, int v6, const int dir, const __u16 *mac)
{
	__u32 slot = BANDIX_CONTROL_DNS;
	__u32 *dns_on = bpf_map_lookup_elem(&control, &slot);

	slot = BANDIX_CONTROL_FLOWS;
	__u32 *flows_on = bpf_map_lookup_elem(&control, &slot);
	int dns = dns_on && *dns_on, with_flows = flows_on && *flows_on;

	if (!dns && !with_flows)
		return;

	/* The IP header is linear (see account()): read it in place. */
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct bandix_flow_key key = { .family = v6 ? 6 : 4, .dir = dir };
	int l4 = -1;

	if (!v6) {
		struct ipv4_view *ip = data + l2;

		if ((void *)(ip + 1) > data_end)
			return;
		key.proto = ip->protocol;
		key.saddr[0] = ip->saddr;
		key.daddr[0] = ip->daddr;
		if (!(ip->frag_off & bpf_htons(0x1fff))) /* a later fragment has no ports */
			l4 = l2 + (ip->ver_ihl & 0x0f) * 4;
	} else {
		struct ipv6_view *ip6 = data + l2;

		if ((void *)(ip6 + 1) > data_end)
			return;
		__builtin_memcpy(key.saddr, ip6->saddr, sizeof(key.saddr));
		__builtin_memcpy(key.daddr, ip6->daddr, sizeof(key.daddr));
		key.proto = ip6->nexthdr;
		l4 = ipv6_l4(skb, l2 + sizeof(*ip6), &key.proto);
	}
	int ported = l4 >= 0 && (key.proto == 17 || key.proto == 6);

	if (ported) {
		/* The ports are nearly always in the linear part too (the mask is for the verifier). */
		__be16 *ports = data + (l4 & 0x3ff);

		if (l4 <= 0x3ff && (void *)(ports + 2) <= data_end) {
			key.sport = ports[0];
			key.dport = ports[1];
		} else if (bpf_skb_load_bytes(skb, l4, &key.sport, 4)) {
			ported = 0;
		}
	}
	if (dns && ported && (key.sport == bpf_htons(53) || key.dport == bpf_htons(53)) &&
	    (key.proto == 17 || tcp_payload(skb, l4) >= 0))
		emit(&dns_events, BANDIX_HEALTH_DNS_LOST, skb, l2, v6, dir, mac);
	if (!with_flows)
		return;
	if (count_flow(&key, skb->len - l2, mac) >= BANDIX_HELLO_PACKETS || dir != BANDIX_DIR_TX || !ported)
		return;
	if (key.proto == 6 ? starts_client_hello(skb, tcp_payload(skb, l4)) : key.dport == bpf_htons(443)) {
		__u8 first = 0;

		/* QUIC: a long header with the fixed bit; the daemon checks version and type. */
		if (key.proto == 17 && (bpf_skb_load_bytes(skb, l4 + 8, &first, 1) || (first & 0xc0) != 0xc0))
			return;
		emit(&hello_events, BANDIX_HEALTH_HELLO_LOST, skb, l2, v6, dir, mac);
	}
}

/* The first 8 bytes of a slot (MAC and `used`) as one comparable word. */
union slot_head {
	__u16 w[4];
	__u64 v;
};

static __always_inline struct bandix_dev_stats *overflow_stats(const union slot_head *head)
{
	struct bandix_mac_key key;
	struct bandix_dev_stats *stats;

	__builtin_memcpy(&key, head, sizeof(key));
	((union slot_head *)&key)->w[3] = 0;
	stats = bpf_map_lookup_elem(&dev_overflow, &key);
	if (stats)
		return stats;

	struct bandix_dev_stats zero = {};
	long err = bpf_map_update_elem(&dev_overflow, &key, &zero, BPF_NOEXIST);

	if (err && err != -17 /* EEXIST: added meanwhile */) {
		health_inc(BANDIX_HEALTH_DEV_MAP_FULL);
		return 0;
	}
	return bpf_map_lookup_elem(&dev_overflow, &key);
}

static __always_inline struct bandix_dev_stats *device_stats(const __u16 *mac)
{
	union slot_head head = { .w = { mac[0], mac[1], mac[2], 1 } };
	/* Multiplicative hash of the last four bytes: the first three are the
	 * vendor and often shared by every device on the network. */
	__u32 h = ((__u32)mac[1] | ((__u32)mac[2] << 16)) * 2654435761u;

	h >>= 32 - __builtin_ctz(BANDIX_SLOTS);
	for (__u32 i = 0; i < BANDIX_SLOT_PROBES; i++) {
		__u32 idx = (h + i) & (BANDIX_SLOTS - 1);
		struct bandix_slot *slot = bpf_map_lookup_elem(&dev_slots, &idx);

		if (!slot)
			break;
		if (*(__u64 *)slot == head.v)
			return &slot->stats;
		if (*(__u64 *)slot == 0) {
			/* Per-CPU: no other writer can race for this copy. */
			*(__u64 *)slot = head.v;
			return &slot->stats;
		}
	}
	return overflow_stats(&head);
}

static __always_inline int account(struct __sk_buff *skb, const int dir)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct eth_view *eth = data;
	__u32 l2 = sizeof(*eth);
	__be16 proto;

	if ((void *)(eth + 1) > data_end)
		return TC_ACT_UNSPEC;
	/* A group address (broadcast, multicast) is not a device. On ingress
	 * the source is the device and is always unicast. */
	if (dir == BANDIX_DIR_RX && (eth->dst[0] & bpf_htons(0x0100)))
		return TC_ACT_UNSPEC;
	proto = eth->proto;

	/* Tags still in the data (no VLAN offload) belong to L2. */
#pragma unroll
	for (int i = 0; i < MAX_VLAN_TAGS; i++) {
		struct vlan_view *tag = data + l2;

		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		if ((void *)(tag + 1) > data_end)
			return TC_ACT_UNSPEC;
		proto = tag->proto;
		l2 += sizeof(*tag);
	}

	const struct bandix_lan *lan = lan_table();
	int is_lan, is_v6 = 0;

	if (!lan)
		return TC_ACT_UNSPEC;
	if (proto == bpf_htons(ETH_P_IP)) {
		struct ipv4_view *ip;

		if (ensure_linear(skb, l2 + sizeof(*ip))) {
			health_inc(BANDIX_HEALTH_TRUNCATED);
			return TC_ACT_UNSPEC;
		}
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
		ip = data + l2;
		if ((void *)(ip + 1) > data_end)
			return TC_ACT_UNSPEC;
		is_lan = lan_has_v4(lan, dir == BANDIX_DIR_TX ? ip->daddr : ip->saddr);
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		/* The peer address sits in the fixed header: extension headers
		 * do not move it, so counting needs no walk over them. */
		struct ipv6_view *ip6;

		is_v6 = 1;
		if (ensure_linear(skb, l2 + sizeof(*ip6))) {
			health_inc(BANDIX_HEALTH_TRUNCATED);
			return TC_ACT_UNSPEC;
		}
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
		ip6 = data + l2;
		if ((void *)(ip6 + 1) > data_end)
			return TC_ACT_UNSPEC;
		is_lan = lan_has_v6(lan, dir == BANDIX_DIR_TX ? ip6->daddr : ip6->saddr);
	} else {
		return TC_ACT_UNSPEC; /* ARP and other non-IP frames: not counted */
	}

	/* Reload: a pull above may have moved the data. */
	eth = (void *)(long)skb->data;
	if ((void *)(eth + 1) > (void *)(long)skb->data_end)
		return TC_ACT_UNSPEC;

	const __u16 *mac = dir == BANDIX_DIR_TX ? eth->src : eth->dst;

	/* Only WAN traffic is limited; a dropped packet is not counted as traffic. */
	if (!is_lan) {
		struct bandix_limit *limit = limit_of(mac);

		if (limit) {
			if (!police(skb, limit, dir, l2, is_v6)) {
				health_inc(BANDIX_HEALTH_LIMIT_DROPS);
				return TC_ACT_SHOT;
			}
			eth = (void *)(long)skb->data; /* wire_cost() may have pulled headers */
			if ((void *)(eth + 1) > (void *)(long)skb->data_end)
				return TC_ACT_UNSPEC;
			mac = dir == BANDIX_DIR_TX ? eth->src : eth->dst;
		}
	}

	struct bandix_dev_stats *stats = device_stats(mac);

	if (!stats)
		return TC_ACT_UNSPEC;
	struct bandix_counter *c = &stats->c[(is_lan ? 0 : 2) | dir];

	c->bytes += skb->len - l2;
	c->packets += 1;
	inspect(skb, l2, is_v6, dir, mac);
	return TC_ACT_UNSPEC;
}

SEC("tc")
int bandix_ingress(struct __sk_buff *skb)
{
	return account(skb, BANDIX_DIR_TX);
}

SEC("tc")
int bandix_egress(struct __sk_buff *skb)
{
	return account(skb, BANDIX_DIR_RX);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
