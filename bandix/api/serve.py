"""The API's HTTP server: waitress, set for a router, in a thread of its own.

waitress reads requests in one event loop and hands only complete ones to
its worker threads, so idle or slow connections hold a socket and a few KB,
never a thread; chunked bodies (uclient-fetch posts every body that way) are
read like any other. The settings, and why (README "API server"):
"""

from __future__ import annotations

import logging
import threading

from waitress.server import create_server

from .body import MAX_BODY

log = logging.getLogger(__name__)

WAITRESS_SETTINGS = {
    # Two requests in falcon at once, a third queued: the dashboard, LuCI and Prometheus
    # each ask about once a second or less; a slow report query then delays nobody else.
    "threads": 3,
    # Sockets open at once (idle and slow ones included) before new connections wait in
    # the backlog: room for 200 stalled clients and the router's own, at a few KB each.
    "connection_limit": 256,
    # poll(), not select(): select() cannot watch file descriptors above 1023.
    "asyncore_use_poll": True,
    # The loop is woken by sockets and by finished requests; its timeout only paces the idle
    # check below, so an idle daemon wakes every 10 s instead of every second.
    "asyncore_loop_timeout": 10,
    # An idle keep-alive connection is closed after this long (checked every cleanup_interval).
    "channel_timeout": 30,
    "cleanup_interval": 10,
    # Bodies are small JSON objects: waitress refuses larger ones (413) before buffering them.
    "max_request_body_size": MAX_BODY,
    "max_request_header_size": 16 * 1024,
    # No proxy in front: X-Forwarded-* headers are dropped, so REMOTE_ADDR is the peer's
    # address and cannot be forged to look like the router itself.
    "clear_untrusted_proxy_headers": True,
    "trusted_proxy": None,
    # No Server header: the answer does not advertise the software behind it.
    "ident": "",
    "expose_tracebacks": False,
}


class ApiServer:
    """Binds at construction (OSError: the address or port is taken); serves after start()."""

    def __init__(self, app, host: str, port: int) -> None:
        self._server = create_server(app, host=host, port=port, **WAITRESS_SETTINGS)
        self._thread = threading.Thread(target=self._server.run, name="api", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        return self._server.effective_host, int(self._server.effective_port)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Close every connection from the loop's own thread, then the workers."""
        server = self._server

        def close_all() -> None:
            for channel in list(server._map.values()):
                channel.close()

        if self._thread.is_alive():
            server.trigger.pull_trigger(close_all)
            self._thread.join(5)
        server.task_dispatcher.shutdown(timeout=5)
