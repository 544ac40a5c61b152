//! Prometheus metrics and JSON access logs for the gateway.
