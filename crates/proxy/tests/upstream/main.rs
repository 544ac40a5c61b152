//! Integration tests: real sockets on 127.0.0.1, small hyper servers that count connections.

mod support;
mod switch;

mod h2;
mod health;
mod lb;
mod limits;
mod outlier;
mod pool;
mod streaming;
mod tls;
