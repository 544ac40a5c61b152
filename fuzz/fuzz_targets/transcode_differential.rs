//! See `check_differential` in `fuzz/checks/transcode.rs` (shared with the replay test).
#![no_main]

use libfuzzer_sys::fuzz_target;

/// The repository root, seen from this crate's manifest.
#[allow(dead_code)] // read by the checks that build the descriptor set
const REPO_ROOT: &str = "..";

#[path = "../checks/transcode.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::check_differential(data));
