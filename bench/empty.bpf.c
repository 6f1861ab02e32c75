// SPDX-License-Identifier: MIT
/* The floor for the per-packet cost: a TC program that does nothing. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

SEC("tc")
int empty_tc(struct __sk_buff *skb)
{
	(void)skb; /* -Wextra -Werror: the floor reads nothing */
	return TC_ACT_UNSPEC;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
