"""Serve the falcon app with waitress in a thread that can be stopped cleanly."""

from __future__ import annotations

import threading

from waitress import create_server, wasyncore


class ApiServer:
    """Binds at construction (so a busy port fails early), serves in a thread."""

    def __init__(self, app, host: str, port: int) -> None:
        self._server = create_server(
            app, host=host, port=port, threads=4, ident="bandix", channel_timeout=30, expose_tracebacks=False
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="api", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.getsockname()
        return host, int(port)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        smap = self._server._map
        while not self._stop.is_set():
            wasyncore.loop(timeout=0.5, map=smap, use_poll=True, count=1)
        # Close from the serving thread: the socket map is not thread-safe.
        self._server.task_dispatcher.shutdown(cancel_pending=True, timeout=3)
        wasyncore.close_all(smap)

    def stop(self) -> None:
        if self._thread.ident is None:  # bound but never served (start-up failed)
            self._server.task_dispatcher.shutdown(cancel_pending=True, timeout=3)
            wasyncore.close_all(self._server._map)
            return
        self._stop.set()
        self._server.pull_trigger()
        self._thread.join(5)
