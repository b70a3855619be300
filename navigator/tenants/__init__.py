"""Tenant processes: the supervisor (state table, single-flight start, readiness, back-off),
spawning and ports, managed processes, hooks, leftovers of a previous run, machine idle."""
