//! Upstream clusters: pooled connections with hard caps, load balancing, HTTP/1.1, h2 and TLS to endpoints.
