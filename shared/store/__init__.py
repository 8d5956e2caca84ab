"""Data access: the only modules (with shared.redis_keys) that read or write Redis records."""
