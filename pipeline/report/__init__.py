"""Reports, read from git and the cluster; none of them writes.

status.py, summary.py        what runs where (ship status, ship summary)
events.py                    ship's commits as events, by their Ship-* trailers
deployments.py, metrics.py   events replayed into deployments and recoveries; DORA's four keys
dashboard/                   the static site and ship serve
preview/                     what a change does to every environment, rendered (ship preview)
"""
