"""State: read-only views of what git wants (desired.py) and what runs (traffic.py), shared by
the flows (rollout/) and the reports (report/). Never writes to git or the cluster."""
