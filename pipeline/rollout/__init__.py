"""Rollout: gates, analysis, promotion, canary and rollback."""
