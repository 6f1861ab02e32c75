"""Attach the TC programs to LAN interfaces with pyroute2 (netlink, no forks).

A clsact qdisc is shared with other programs (qosify, SQM), so only filters
bandix added are ever touched: they are recognised by their name. Filters left
by a previous bandix (a crash, or a stop for restart) are replaced in place,
which swaps the program atomically so no packet goes uncounted.
"""

from __future__ import annotations

import errno
import logging
from dataclasses import dataclass

from ..pyroute import IPRoute, NetlinkError
from . import layout

log = logging.getLogger(__name__)

PARENT_INGRESS = 0xFFFFFFF2
PARENT_EGRESS = 0xFFFFFFF3
FILTER_NAME_PREFIX = "bandix"
HOOKS = (
    # (direction, program, tc parent)
    ("ingress", layout.PROG_INGRESS, PARENT_INGRESS),
    ("egress", layout.PROG_EGRESS, PARENT_EGRESS),
)


@dataclass(frozen=True)
class Filter:
    """One cls_bpf filter as the kernel reports it."""

    ifindex: int
    parent: int
    prio: int
    handle: int
    name: str


def _prio(msg) -> int:
    return (msg["info"] >> 16) & 0xFFFF


def list_filters(ipr: IPRoute, ifindex: int, parent: int) -> list[Filter]:
    """Every bpf filter on one hook of an interface."""
    try:
        msgs = list(ipr.get_filters(index=ifindex, parent=parent))
    except NetlinkError as exc:
        if exc.code in (errno.EINVAL, errno.ENOENT):  # no clsact on this interface
            return []
        raise
    out = []
    for msg in msgs:
        if msg.get_attr("TCA_KIND") != "bpf":
            continue
        opts = msg.get_attr("TCA_OPTIONS")
        if opts is None:  # the chain head message, not a filter
            continue
        out.append(Filter(ifindex, parent, _prio(msg), msg["handle"], opts.get_attr("TCA_BPF_NAME") or ""))
    return out


def our_filters(ipr: IPRoute, ifindex: int) -> list[Filter]:
    return [
        f
        for _, _, parent in HOOKS
        for f in list_filters(ipr, ifindex, parent)
        if f.name.startswith(FILTER_NAME_PREFIX)
    ]


def ensure_clsact(ipr: IPRoute, ifindex: int) -> bool:
    """Add a clsact qdisc unless one is there; True if we added it."""
    try:
        ipr.tc("add", "clsact", ifindex)
        return True
    except NetlinkError as exc:
        if exc.code == errno.EEXIST:
            return False
        raise


def attach(ipr: IPRoute, ifindex: int, prog_fds: dict[str, int], priority: int) -> list[Filter]:
    """Attach both programs; replace our own stale filters instead of stacking."""
    ensure_clsact(ipr, ifindex)
    attached = []
    for _direction, prog, parent in HOOKS:
        mine = [f for f in list_filters(ipr, ifindex, parent) if f.name.startswith(FILTER_NAME_PREFIX)]
        keep = mine[0] if mine and (priority in (0, mine[0].prio)) else None
        for stale in mine:
            if stale is not keep:
                log.info("removing stale bandix filter prio %d on ifindex %d", stale.prio, ifindex)
                _delete(ipr, stale)
        args = dict(fd=prog_fds[prog], name=prog, parent=parent, classid=1, direct_action=True)
        if keep:
            ipr.tc("replace-filter", "bpf", ifindex, keep.handle, prio=keep.prio, **args)
            log.info("took over bandix filter prio %d on ifindex %d without a gap", keep.prio, ifindex)
        else:
            ipr.tc("add-filter", "bpf", ifindex, 0, prio=priority, **args)
        found = [f for f in list_filters(ipr, ifindex, parent) if f.name == prog]
        if not found:
            raise OSError(errno.EIO, f"filter {prog} did not appear on ifindex {ifindex}")
        attached.append(found[0])
    return attached


def _delete(ipr: IPRoute, f: Filter) -> None:
    try:
        ipr.tc("del-filter", "bpf", f.ifindex, f.handle, parent=f.parent, prio=f.prio)
    except NetlinkError as exc:
        if exc.code not in (errno.ENOENT, errno.EINVAL, errno.ENODEV):
            raise


def detach(ipr: IPRoute, filters: list[Filter]) -> None:
    """Remove exactly the filters we attached; the clsact qdisc stays."""
    for f in filters:
        _delete(ipr, f)


def is_attached(ipr: IPRoute, f: Filter) -> bool:
    return any(x.prio == f.prio and x.handle == f.handle and x.name == f.name
               for x in list_filters(ipr, f.ifindex, f.parent))
