"""Fleet scheduler: SLA tiers, preemption, migration, elastic resize (policy, simulator, daemon)."""
