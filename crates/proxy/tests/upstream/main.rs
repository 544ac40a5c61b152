//! Integration tests: real sockets on 127.0.0.1, small hyper servers that count connections.

mod support;

mod h2;
mod lb;
mod pool;
mod streaming;
mod tls;
