"""ship: a GitOps release pipeline toolkit.

A commit becomes a digest-pinned release written into a per-environment kustomize overlay in
git; the cluster is reconciled from git with server-side apply, gated on health, promoted
dev -> uat -> prod (with a canary) and rolled back automatically when gates fail.
"""

__version__ = "0.1.0"
