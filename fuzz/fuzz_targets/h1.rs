//! The fast path's HTTP/1.1 parsers: see `fuzz/checks/h1.rs` (shared with the replay test).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks/h1.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::check(data));
