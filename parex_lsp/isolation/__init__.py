"""Isolation: lock keys and their overlap, the cross-process lock registry, the lock table, git worktrees and
process liveness. It imports nothing from the engine, the agents or the front ends (checked in CI)."""
