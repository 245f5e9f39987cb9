"""The cluster side: a small API client, reconcile planning, server-side apply, health, the lock."""
