//! Test support: start the gateway, upstreams and real servers on loopback ports, and talk to them.
