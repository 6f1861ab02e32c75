"""A DNS server for the tests, with fixed answers and a slow name.

`python -m tests.dnsserver ADDRESS [ADDRESS...]` serves UDP and TCP on port
53 of each address until killed. Real DNS over the network, built on dnslib's
server (threaded: the slow name does not hold up the others).
"""

from __future__ import annotations

import sys
import time

from dnslib import AAAA, CNAME, QTYPE, RCODE, RR, A
from dnslib.server import BaseResolver, DNSLogger, DNSServer

SLOW_SECONDS = 0.150
TTL = 300
ZONE = {
    ("a.test.", "A"): [RR("a.test.", QTYPE.A, rdata=A("10.1.1.1"), ttl=TTL)],
    ("a.test.", "AAAA"): [RR("a.test.", QTYPE.AAAA, rdata=AAAA("2001:db8::1"), ttl=TTL)],
    ("slow.test.", "A"): [RR("slow.test.", QTYPE.A, rdata=A("10.3.3.3"), ttl=TTL)],
    ("www.cname.test.", "A"): [
        RR("www.cname.test.", QTYPE.CNAME, rdata=CNAME("edge.cname.test."), ttl=TTL),
        RR("edge.cname.test.", QTYPE.CNAME, rdata=CNAME("cdn.cname.test."), ttl=TTL),
        RR("cdn.cname.test.", QTYPE.A, rdata=A("10.2.2.2"), ttl=TTL),
        RR("cdn.cname.test.", QTYPE.A, rdata=A("10.2.2.3"), ttl=TTL),
    ],
    ("many.test.", "A"): [RR("many.test.", QTYPE.A, rdata=A(f"10.4.0.{i}"), ttl=TTL) for i in range(1, 41)],
}
# Names of the flow tests, served by tests/webserver.py on addresses of the
# internet namespace: one address each, two names on one address, a CNAME chain.
WEB = {"alpha.test.": ["198.51.100.21"], "beta.test.": ["198.51.100.22"], "gamma.test.": ["198.51.100.22"],
       "edge.cdn.test.": ["198.51.100.23"], "dns.google.": ["198.51.100.53"]}
WEB_V6 = {"alpha.test.": ["2001:db8:100::21"]}
for _name, _ips in WEB.items():
    ZONE[(_name, "A")] = [RR(_name, QTYPE.A, rdata=A(ip), ttl=TTL) for ip in _ips]
for _name, _ips in WEB_V6.items():
    ZONE[(_name, "AAAA")] = [RR(_name, QTYPE.AAAA, rdata=AAAA(ip), ttl=TTL) for ip in _ips]
ZONE[("www.video.test.", "A")] = [RR("www.video.test.", QTYPE.CNAME, rdata=CNAME("edge.cdn.test."), ttl=TTL),
                                  *ZONE[("edge.cdn.test.", "A")]]
RCODES = {"missing.test.": RCODE.NXDOMAIN, "broken.test.": RCODE.SERVFAIL}


class Resolver(BaseResolver):
    def resolve(self, request, handler):
        reply = request.reply()
        name, qtype = str(request.q.qname).lower(), QTYPE[request.q.qtype]
        if name == "slow.test.":
            time.sleep(SLOW_SECONDS)
        if name in RCODES:
            reply.header.rcode = RCODES[name]
        for rr in ZONE.get((name, qtype), []):
            reply.add_answer(rr)
        return reply


def main(addresses: list[str]) -> None:
    logger = DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)
    servers = [DNSServer(Resolver(), address=a, port=53, tcp=tcp, logger=logger)
               for a in addresses for tcp in (False, True)]
    for s in servers:
        s.start_thread()
    print("listening", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main(sys.argv[1:])
