//! The API gateway: listeners, TLS, the request pipeline, filters and the admin endpoints.
