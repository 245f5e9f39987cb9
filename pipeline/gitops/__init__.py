"""The git side: overlays, releases and ledgers as files, kustomize rendering, git, and which apps
changed since their last release (changed.py)."""
