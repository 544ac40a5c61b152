//! Replays the saved inputs of the transcode fuzz targets (`fuzz/regressions/transcode_*`:
//! seeds, and every input a fuzzer once crashed on) with the targets' own checks.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

/// The repository root, seen from this crate's manifest.
const REPO_ROOT: &str = "../..";

#[path = "../../../fuzz/checks/transcode.rs"]
mod checks;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(REPO_ROOT)
        .join("fuzz/regressions")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        // A panic names the input that caused it.
        eprintln!("replaying {}", path.display());
        check(&data);
        n += 1;
    }
    assert!(n >= 3, "expected the saved inputs in {}", dir.display());
}

#[test]
fn transcode_template_inputs() {
    replay("transcode_template", checks::check_template);
}

#[test]
fn transcode_query_inputs() {
    replay("transcode_query", checks::check_query);
}

#[test]
fn transcode_json_inputs() {
    replay("transcode_json", checks::check_json);
}

#[test]
fn transcode_differential_inputs() {
    replay("transcode_differential", checks::check_differential);
}
