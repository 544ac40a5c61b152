//! Route lookup benchmark (placeholder).
fn main() {}
