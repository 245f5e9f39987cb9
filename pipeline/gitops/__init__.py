"""The git side: overlays, releases and ledgers as files, kustomize rendering, safe YAML, git."""
