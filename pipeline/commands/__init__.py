"""What each CLI command does, end to end: the one layer that builds connections.

    context.py   open_context(): ship.yaml, the git workspace, cluster/registry/engine factories
    deploy.py    build, release, sync, promote, abort, rollback
    inspect.py   diff, status, history, verify, summary, rbac
    observe.py   metrics, dashboard, serve, preview

The CLI parses arguments, opens a context and calls one function here; each returns a result
that renders itself as text (`.text()`) and JSON (`.to_json()`). Flows below (rollout/,
image/, report/) take the context and never connect to anything on their own.
"""
