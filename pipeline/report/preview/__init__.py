"""`ship preview`: what a change would do to every environment, rendered with kustomize, with no
cluster. For pull requests: Markdown for a comment or a job summary.

    model.py     the preview: per environment the overlay's changes and the next release's config,
                 per app its source, secret keys and warnings
    gather.py    the base (the merge base with --base, exported with `git archive`) and the
                 working tree, each rendered with the real kustomize
    changes.py   object-by-object comparison: images, config values, secret keys (never values)
    markdown.py  the Markdown

Reads git and files; never writes to git, never talks to a cluster, never shows a secret value.
"""
