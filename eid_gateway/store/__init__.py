"""Short-lived shared state: the :class:`~eid_gateway.store.base.Store` port and its implementations
(SQLite embedded default; Redis for several nodes to follow)."""
