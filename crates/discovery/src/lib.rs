//! Endpoint discovery: an in-process DNS cache that honors TTLs, refreshes ahead and serves stale.
