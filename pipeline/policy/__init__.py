"""Release governance: the rules an environment's `policy:` sets, decided and enforced.

    freeze.py    the freeze by hand kept in git (environments/ENV/freeze.yaml), and every freeze
                 that holds an environment at T (pure)
    rules.py     what applies to an environment now and why: `ship policy ENV` (pure)
    guard.py     the checks release, promote and sync run before they write or apply anything:
                 not frozen (or overridden, with a reason), every image signed, not older

Freeze windows themselves (weekly or dated, in a time zone) are config/windows.py: ship.yaml
declares them. Rollbacks and aborts pass no guard: taking a change back is always allowed.
"""
