"""GET /api/flows/top: the report queries of `bandix top-*` for the dashboard."""

from __future__ import annotations

import sqlite3
import time

import falcon

from .errors import ok
from .traffic import int_param, mac_param, single_param

# The report functions by name: store.reports is imported on the first request, not at start.
BY = {"domain": "top_domain", "ip": "top_ip", "lan": "top_lan", "flow": "top_flow", "sni": "top_sni",
      "dns": "top_dns", "quic": "top_quic", "dohdot": "top_dohdot", "coverage": "attribution_coverage"}
MAX_LOOKBACK = 60 * 24 * 366


class FlowsTopResource:
    def __init__(self, ctx) -> None:
        self._ctx = ctx

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        path = self._ctx.flows_db
        if path is None:
            raise falcon.HTTPServiceUnavailable(description="flow analytics are off: start bandix with --enable-flows")
        by = single_param(req, "by") or "domain"
        if by not in BY:
            raise falcon.HTTPBadRequest(description=f"by: must be one of {', '.join(BY)}")
        from ..store import reports  # only when a report is asked for

        window = reports.Window(int(time.time()), int_param(req, "lookback_minutes", 60, 1, MAX_LOOKBACK),
                                int_param(req, "limit", 20, 1, 1000), mac_param(req))
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            report = getattr(reports, BY[by])(db, window)
        finally:
            db.close()
        resp.media = ok({"by": by, "lookback_minutes": window.lookback_minutes, "title": report.title,
                         "columns": [{"key": k, "label": label, "unit": kind} for k, label, kind in report.columns],
                         "rows": report.rows})
