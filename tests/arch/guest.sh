#!/bin/sh
# Run by the VM's init (tests/arch/images.py): the checks, with Debian's python3,
# on the checkout shared read-only at /payload and the wheels the host named in /out/site.
cd /payload || exit 1
PYTHONPATH=/payload:/payload/$(cat /out/site)
export PYTHONPATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
python3 -m tests.arch.guest 2>&1 | tee /out/guest.log
