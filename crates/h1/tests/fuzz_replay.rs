//! Replays the saved inputs of the `h1` fuzz target (`fuzz/regressions/h1`: seeds and
//! every input a fuzzer once failed on) with the target's own checks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../../fuzz/checks/h1.rs"]
mod checks;

#[test]
fn saved_fuzz_inputs_keep_their_properties() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/h1");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("fuzz/regressions/h1") {
        let path = entry.expect("entry").path();
        let data = std::fs::read(&path).expect("read");
        let name = path.display().to_string();
        if std::panic::catch_unwind(|| checks::check(&data)).is_err() {
            panic!("{name} fails the h1 checks");
        }
        n += 1;
    }
    assert!(n >= 5, "the seeds are there ({n} found)");
}
