"""CONTROL/ as include/package-ipkg.mk writes it: control fields in the build
system's order, conffiles, and the default postinst/prerm that hand over to
default_postinst/default_prerm of /lib/functions.sh.
"""

from __future__ import annotations

import re
from pathlib import Path

POSTINST = """#!/bin/sh
[ "${IPKG_NO_SCRIPT}" = "1" ] && exit 0
[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0
. ${IPKG_INSTROOT}/lib/functions.sh
default_postinst $0 $@
"""

PRERM = """#!/bin/sh
[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0
. ${IPKG_INSTROOT}/lib/functions.sh
default_prerm $0 $@
"""

ORDER = ("Package", "Version", "Depends", "Source", "SourceName", "License", "LicenseFiles", "Section",
         "SourceDateEpoch", "URL", "Maintainer", "Architecture", "Installed-Size")


def control_text(fields: dict[str, str], description: str) -> str:
    """Empty fields are left out (addfield); each description line starts with one space."""
    lines = [f"{k}: {fields[k]}" for k in ORDER if fields.get(k)]
    body = [re.sub(r"^\s*", " ", line) for line in (description.strip("\n").splitlines() or [""])]
    return "\n".join(lines) + "\nDescription: " + "\n".join(body) + "\n"


def write(pkg_dir: Path, fields: dict[str, str], description: str, conffiles: list[str],
          postinst_pkg: str | None = None) -> None:
    control = pkg_dir / "CONTROL"
    control.mkdir(mode=0o755, parents=True, exist_ok=True)
    (control / "control").write_text(control_text({**fields, "Installed-Size": "0"}, description))
    (control / "control").chmod(0o644)
    for name, text in (("postinst", POSTINST), ("prerm", PRERM), ("postinst-pkg", postinst_pkg)):
        if text is not None:
            (control / name).write_text(text)
            (control / name).chmod(0o755)
    # ipkg-build keeps the conffiles that are files of the package, sorted.
    kept = sorted(c for c in conffiles if (pkg_dir / c.lstrip("/")).is_file())
    if kept:
        (control / "conffiles").write_text("".join(f"{c}\n" for c in kept))
        (control / "conffiles").chmod(0o644)
