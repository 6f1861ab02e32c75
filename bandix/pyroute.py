"""pyroute2's netlink pieces without the pyroute2 package's `__init__`.

`import pyroute2.anything` first runs pyroute2/__init__.py, which imports every
API the library has (NDB, IPDB, conntrack, ipset, nl80211, ...): about 10 MB of
RSS on x86-64 for code bandix never calls. Here the package is registered as a
bare namespace (its path, no `__init__` run), so importing a submodule loads
that submodule and what it imports, nothing else. Whoever later asks the
package itself for a name (`from pyroute2 import NDB`) gets the real
`__init__` run then, so other code in the same process is not broken.
"""

from __future__ import annotations

import importlib.util
import os
import sys


def _bare_package() -> None:
    if "pyroute2" in sys.modules:  # already imported, in full or by us
        return
    spec = importlib.util.find_spec("pyroute2")
    if spec is None or spec.loader is None or not spec.submodule_search_locations:
        raise ImportError("No module named 'pyroute2'")
    package = importlib.util.module_from_spec(spec)
    where = list(spec.submodule_search_locations)

    def __getattr__(name: str) -> object:
        # A submodule is for the import system to load: only the package's own names run __init__.
        if name.startswith("__") or any(os.path.exists(os.path.join(d, name)) or
                                        os.path.exists(os.path.join(d, name + ".py")) for d in where):
            raise AttributeError(name)
        del package.__dict__["__getattr__"]
        spec.loader.exec_module(package)
        try:
            return package.__dict__[name]
        except KeyError:
            raise AttributeError(f"module 'pyroute2' has no attribute {name!r}") from None

    package.__getattr__ = __getattr__  # type: ignore[attr-defined]
    sys.modules["pyroute2"] = package
    importlib.import_module("pyroute2.config.log")  # the package's logger setup: a NullHandler


_bare_package()

from pyroute2.iproute.linux import IPRoute  # noqa: E402
from pyroute2.netlink.exceptions import NetlinkError  # noqa: E402

__all__ = ["IPRoute", "NetlinkError"]
