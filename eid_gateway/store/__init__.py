"""Short-lived shared state: the :class:`~eid_gateway.store.base.Store` port and its implementations
(SQLite for the embedded default and one machine; Redis for several nodes)."""
