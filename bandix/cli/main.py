"""`bandix` / `python -m bandix`: parse flags, run the daemon, map errors to exit codes.

`bandix COMMAND ...` (top-domain, top-ip, ..., ui, prune) runs a report instead;
`bandix export` asks the running daemon for its usage export.
`bandix top` is the live device view over the daemon's API.
"""

from __future__ import annotations

import logging
import sys

from ..config import parse_args
from ..errors import FatalError
from ..logs import setup_logging


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "export":  # the running daemon's usage, through its API
        from .export import main as export_main

        return export_main(argv[1:])
    if argv and argv[0] == "top":  # the live view: a client of the running daemon
        from .top import main as top_main

        return top_main(argv[1:])
    if argv and not argv[0].startswith("-"):  # a report command: no daemon, no root
        from .reports import main as report_main

        return report_main(argv)
    opts = parse_args(argv)  # exits 2 with a usage message on bad flags
    setup_logging(opts.log_level, opts.cli.get("syslog"))
    from ..daemon import Daemon  # after logging: importing pulls in pyroute2 and falcon

    daemon = Daemon(opts)
    daemon.install_signal_handlers()
    try:
        daemon.start()
    except FatalError as exc:
        daemon.shutdown()
        print(f"bandix: error: {exc}", file=sys.stderr)
        return 2
    except BaseException:
        logging.getLogger("bandix").exception("start-up failed")
        daemon.shutdown()
        return 1
    try:
        daemon.run()
    finally:
        daemon.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
