"""`python -m tests.arch [--arch s390x] [--timeout S]`: build what is missing, run each VM.

Images missing from the cache are built side by side (each mmdebstrap mostly
waits on qemu-user and the mirror); the VMs then run one after the other, each
under its own hard timeout. Prints every guest check, each VM's
`N passed, N failed`, the total, and how long each part took.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from tests.arch import images, payload, vm

VM_TIMEOUT_S = 900.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.arch", description=__doc__.splitlines()[0])
    parser.add_argument("--arch", action="append", choices=sorted(images.ARCHES),
                        help="run only this VM (repeatable; default: every one)")
    parser.add_argument("--timeout", type=float, default=VM_TIMEOUT_S, help="hard limit per VM run, seconds")
    parser.add_argument("--build-only", action="store_true", help="build the cache, run nothing")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("make test-arch needs root (mmdebstrap, binfmt_misc)", file=sys.stderr)
        return 2
    arches = [images.ARCHES[name] for name in (args.arch or ("s390x", "armhf"))]
    for arch in arches:
        vm.require_tools(arch)
    vm.ARTIFACTS.mkdir(parents=True, exist_ok=True)

    signal.signal(signal.SIGTERM, _interrupt)  # CI or make stopping us: unwind, kill what we started
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(arches) + 1) as pool:
        try:
            site_job = pool.submit(payload.ensure, vm.ARTIFACTS / "payload-build.log")
            jobs = {arch.name: pool.submit(_build, arch) for arch in arches}
            site, site_made = site_job.result()
            built = {name: job.result() for name, job in jobs.items()}
        except BaseException:
            images.STOP.set()  # the other builds stop too, before the pool is left
            raise
    print(f"payload: {site.name} {'installed' if site_made else 'cached'}", flush=True)
    for name, (image, seconds) in built.items():
        print(f"image {name}: {image.disk.name} " + (f"built in {seconds:.0f} s" if seconds else "cached"), flush=True)
    if args.build_only:
        return 0

    outcomes = []
    for arch in arches:
        print(f"{arch.name} ({arch.what}): booting", flush=True)
        outcome = vm.run(arch, images.image_for(arch), site, args.timeout)
        note = f" — {outcome.error}" if outcome.error else ""
        print(f"{arch.name}: {outcome.passed} passed, {outcome.failed} failed in {outcome.seconds:.0f} s{note}",
              flush=True)
        outcomes.append(outcome)
    passed, failed = sum(o.passed for o in outcomes), sum(o.failed for o in outcomes)
    print(f"test-arch: {passed} passed, {failed} failed ({time.monotonic() - started:.0f} s in all; "
          f"logs in {vm.ARTIFACTS.relative_to(images.ROOT)}/)", flush=True)
    return 0 if failed == 0 and passed > 0 else 1


def _interrupt(_signum, _frame) -> None:
    raise KeyboardInterrupt("stopped by SIGTERM")


def _build(arch: images.Arch) -> tuple[images.Image, float]:
    started = time.monotonic()
    image, made = images.ensure(arch, vm.ARTIFACTS / f"image-{arch.name}.log")
    return image, (time.monotonic() - started) if made else 0.0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as exc:  # what was started is stopped by now
        print(f"test-arch: interrupted ({exc or 'Ctrl-C'})", file=sys.stderr)
        sys.exit(130)
