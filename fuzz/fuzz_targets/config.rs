//! The config loader: any text gives a config or errors, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Err(errors) = sekisho_config::parse_str(&text, std::path::Path::new("/nonexistent")) {
        // Every error renders (Display walks paths and positions).
        let _ = errors.to_string();
    }
});
