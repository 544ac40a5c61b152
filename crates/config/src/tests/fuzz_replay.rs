//! Replays the saved fuzz inputs of `fuzz/regressions/config` (seeds and any input that
//! once crashed): CI does not fuzz, but it runs every input the fuzzer kept.

use std::path::Path;

#[test]
fn saved_fuzz_inputs_parse_or_fail_cleanly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/config");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut n = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        if let Err(errors) = crate::parse_str(&text, Path::new("/nonexistent")) {
            assert!(!errors.to_string().is_empty(), "{}", path.display());
        }
        n += 1;
    }
    assert!(n >= 5, "expected the saved inputs in {}", dir.display());
}
