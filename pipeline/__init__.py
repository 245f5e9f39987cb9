"""ship: a GitOps release pipeline toolkit.

A commit becomes a digest-pinned release written into a per-environment kustomize overlay in
git; the cluster is reconciled from git with server-side apply, gated on health, promoted
dev -> uat -> prod (with a canary) and rolled back automatically when gates fail.
"""

import sys
import types

__version__ = "0.1.0"

# httpx imports its own command line (httpx._main) whenever click is installed, and with it
# rich and pygments: a fifth of a second at every start of a command that talks to a cluster,
# for a CLI ship never runs. A stand-in is registered before httpx is first imported.
if "httpx" not in sys.modules and "httpx._main" not in sys.modules:
    _stand_in = types.ModuleType(
        "httpx._main", "httpx's command line, not loaded by ship (see pipeline/__init__.py)"
    )
    # Short enough to stay one line when formatted, so the ignore stays on the line mypy reports.
    _unavailable = "httpx's command line is not available inside ship"
    _stand_in.main = lambda *args, **kwargs: sys.exit(_unavailable)  # type: ignore[attr-defined]
    sys.modules["httpx._main"] = _stand_in
