"""DNS records: queries and responses matched, kept up to a maximum, queried and summarised.

A response is matched to its query by client address and port, server,
transaction id and question; its response time is the difference of the two
packets' kernel timestamps. Records live in a deque (the oldest dropped in
O(1)); a query and its response form a group, listed newest group first with
the response before its query.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from ..collect.dnsparse import Message, Segment
from .stats import nearest_rank

PENDING_MAX = 10_000  # queries waiting for a response
PENDING_SECONDS = 60
RCODE_NAMES = {0: "Success", 1: "Format error", 2: "Server failure", 3: "Domain not found",
               4: "Not implemented", 5: "Refused", 6: "Name exists", 7: "RRset exists", 8: "RRset missing",
               9: "Not authoritative", 10: "Not in zone"}


def qtype_name(qtype: int) -> str:
    from dnslib import QTYPE

    return QTYPE.get(qtype, f"TYPE{qtype}")


@dataclass(slots=True, eq=False)
class DnsRecord:
    seq: int
    ts_ns: int  # kernel CLOCK_MONOTONIC
    ts_ms: int  # wall clock
    is_query: bool
    message: Message
    segment: Segment
    mac: str
    raw: bytes  # the DNS message, for the full record list
    response_time_ms: int = 0
    group_ms: int = 0  # the group's stamp: its query's, for ordering
    group: int = 0
    answered: bool = False

    @property
    def client(self) -> tuple[str, int]:
        s = self.segment
        return (s.src, s.sport) if self.is_query else (s.dst, s.dport)


def _records_json(raw: bytes) -> list[dict]:
    from dnslib import DNSRecord

    try:
        msg = DNSRecord.parse(raw)
    except Exception:  # dnslib raises several kinds; the walker accepted the structure
        return []
    return [{"name": str(rr.rname), "type": qtype_name(rr.rtype), "ttl": rr.ttl, "data": str(rr.rdata)}
            for rr in msg.rr]


@dataclass
class DnsStore:
    max_records: int
    name_of: Callable[[str], str] = lambda mac: ""
    records: deque = field(init=False)
    lost_events: int = 0
    malformed: int = 0
    # Since start, whatever the store still keeps: for Prometheus counters.
    seen_queries: int = 0
    seen_responses: Counter = field(default_factory=Counter)  # by response code
    answered: int = 0  # responses matched to their query
    answer_ms_sum: int = 0

    def __post_init__(self) -> None:
        self.records = deque(maxlen=self.max_records)
        self._pending: OrderedDict[tuple, DnsRecord] = OrderedDict()
        self._seq = 0
        self._lock = threading.Lock()

    def resize(self, max_records: int) -> None:
        with self._lock:
            self.max_records = max_records
            self.records = deque(self.records, maxlen=max_records)

    def clear(self) -> None:
        with self._lock:
            self.records.clear()
            self._pending.clear()

    def add(self, ts_ns: int, ts_ms: int, mac: str, seg: Segment, msg: Message, raw: bytes) -> DnsRecord:
        with self._lock:
            self._seq += 1
            rec = DnsRecord(self._seq, ts_ns, ts_ms, not msg.is_response, msg, seg, mac, raw,
                            group_ms=ts_ms, group=self._seq)
            client = rec.client
            server = seg.dst if rec.is_query else seg.src
            key = (client, server, msg.txid, msg.qname.lower(), msg.qtype)
            if rec.is_query:
                self.seen_queries += 1
                self._pending[key] = rec
                self._pending.move_to_end(key)
                while len(self._pending) > PENDING_MAX:
                    self._pending.popitem(last=False)
            else:
                self.seen_responses[RCODE_NAMES.get(msg.rcode, f"RCODE{msg.rcode}")] += 1
                query = self._pending.pop(key, None)
                if query is not None and ts_ns - query.ts_ns < PENDING_SECONDS * 1_000_000_000:
                    rec.response_time_ms = round((ts_ns - query.ts_ns) / 1_000_000)
                    query.response_time_ms = rec.response_time_ms
                    query.answered = True
                    rec.group, rec.group_ms = query.group, query.group_ms
                    self.answered += 1
                    self.answer_ms_sum += rec.response_time_ms
            self.records.append(rec)
            return rec

    # -- reading ----------------------------------------------------------

    def _snapshot(self) -> list[DnsRecord]:
        with self._lock:
            return list(self.records)

    def query(self, domain: str | None, device: str | None, is_query: bool | None,
              page: int, page_size: int) -> dict:
        records = self._snapshot()
        if domain:
            needle = domain.lower()
            records = [r for r in records if needle in r.message.qname.lower()]
        if device:
            needle = device.lower()
            records = [r for r in records if needle in r.mac or needle in self.name_of(r.mac).lower()]
        if is_query is not None:
            records = [r for r in records if r.is_query == is_query]
        # Newest group first; within a group the response before its query.
        records.sort(key=lambda r: (r.group_ms, r.group, not r.is_query, r.seq), reverse=True)
        total = len(records)
        chunk = records[(page - 1) * page_size : page * page_size]
        return {"queries": [self.record_json(r) for r in chunk], "total": total, "page": page,
                "page_size": page_size, "total_pages": math.ceil(total / page_size)}

    def record_json(self, r: DnsRecord) -> dict:
        seg, msg = r.segment, r.message
        local = time.localtime(r.ts_ms / 1000)
        return {
            "timestamp": r.ts_ms,
            "timestamp_formatted": time.strftime("%Y-%m-%d %H:%M:%S", local) + f".{r.ts_ms % 1000:03d}",
            "domain": msg.qname,
            "query_type": qtype_name(msg.qtype),
            "response_code": RCODE_NAMES.get(msg.rcode, f"RCODE{msg.rcode}") if not r.is_query else "",
            "response_time_ms": r.response_time_ms,
            "source_ip": seg.src,
            "destination_ip": seg.dst,
            "source_port": seg.sport,
            "destination_port": seg.dport,
            "transaction_id": msg.txid,
            "is_query": r.is_query,
            "response_ips": list(msg.response_ips),
            "response_records": [] if r.is_query else _records_json(r.raw),
            "device_mac": r.mac,
            "device_name": self.name_of(r.mac),
            "transport": seg.transport,
        }

    def stats(self) -> dict:
        records = self._snapshot()
        queries = [r for r in records if r.is_query]
        responses = [r for r in records if not r.is_query]
        times = sorted(r.response_time_ms for r in responses if r.group != r.seq)
        rcodes = Counter(r.message.rcode for r in responses)
        ok = rcodes.get(0, 0)
        failed = len(responses) - ok
        stamps = [r.ts_ms for r in records]
        start, end = (min(stamps), max(stamps)) if stamps else (0, 0)

        def top(counter: Counter, n: int) -> list[dict]:
            return [{"name": name, "count": count} for name, count in
                    sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]

        return {
            "total_queries": len(queries),
            "total_responses": len(responses),
            "queries_with_response": sum(r.answered for r in queries),
            "queries_without_response": sum(not r.answered for r in queries),
            "avg_response_time_ms": round(sum(times) / len(times), 2) if times else 0,
            "min_response_time_ms": times[0] if times else 0,
            "max_response_time_ms": times[-1] if times else 0,
            "response_time_percentiles": {f"p{p}": nearest_rank(times, p) if times else 0 for p in (50, 90, 95, 99)},
            "success_count": ok,
            "failure_count": failed,
            "success_rate": round(ok / len(responses), 4) if responses else 0,
            "response_codes": [{"code": RCODE_NAMES.get(code, f"RCODE{code}"), "count": count,
                                "percentage": round(count / len(responses), 4)}
                               for code, count in sorted(rcodes.items(), key=lambda kv: (-kv[1], kv[0]))],
            "top_domains": top(Counter(r.message.qname for r in queries), 10),
            "top_query_types": top(Counter(qtype_name(r.message.qtype) for r in queries), 10),
            "top_devices": top(Counter(self.name_of(r.mac) or r.mac for r in queries), 10),
            "top_dns_servers": top(Counter(r.segment.dst for r in queries), 5),
            "unique_devices": len({r.mac for r in queries}),
            "time_range_start": start,
            "time_range_end": end,
            "time_range_duration_minutes": round((end - start) / 60000),
            "lost_events": self.lost_events,
            "malformed_packets": self.malformed,
        }
