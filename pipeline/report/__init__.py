"""Reports: status, history and summaries, read from git and the cluster."""
