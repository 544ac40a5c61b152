//! The parser never panics: random truncations and mutations of a valid config.

use super::{parse, FULL};

/// Bytes that make YAML (and our decoder) take unusual paths.
const NOISE: &[&str] = &[
    ":",
    "-",
    "[",
    "]",
    "{",
    "}",
    ",",
    "\n",
    "  ",
    "\"",
    "'",
    "&a",
    "*a",
    "!!str",
    "?",
    "#",
    "${X}",
    "${",
    "$$",
    "|",
    ">",
    "~",
    "0",
    "99999999999999999999",
    "1.5",
    "é",
    "\t",
    "---",
    "...",
    "%YAML 1.2\n",
    "\u{0}",
    "{*x}",
    "h2",
    "path_prefix",
    "cluster",
];

#[test]
fn never_panics_on_mutated_configs() {
    let mut rng = fastrand::Rng::with_seed(0x5e7_15b0);
    let full: Vec<char> = FULL.chars().collect();
    for round in 0..3000 {
        let mut text: Vec<char> = full.clone();
        match round % 4 {
            0 => text.truncate(rng.usize(..=text.len())),
            1 => {
                for _ in 0..rng.usize(1..6) {
                    let at = rng.usize(..=text.len());
                    let noise = NOISE[rng.usize(..NOISE.len())];
                    text.splice(at..at, noise.chars());
                }
            }
            2 => {
                for _ in 0..rng.usize(1..6) {
                    if text.is_empty() {
                        break;
                    }
                    let at = rng.usize(..text.len());
                    let len = rng.usize(1..20).min(text.len() - at);
                    text.drain(at..at + len);
                }
            }
            _ => {
                // Swap two lines: breaks indentation and structure.
                let mut lines: Vec<String> = FULL.lines().map(str::to_string).collect();
                let (a, b) = (rng.usize(..lines.len()), rng.usize(..lines.len()));
                lines.swap(a, b);
                text = lines.join("\n").chars().collect();
            }
        }
        let src: String = text.into_iter().collect();
        if let Ok(c) = parse(&src) {
            let _ = c.effective_json();
        }
    }
}

#[test]
fn never_panics_on_random_bytes() {
    let mut rng = fastrand::Rng::with_seed(7);
    for _ in 0..2000 {
        let len = rng.usize(0..200);
        let src: String = (0..len)
            .map(|_| {
                let pick = NOISE[rng.usize(..NOISE.len())];
                if rng.bool() {
                    pick.to_string()
                } else {
                    rng.alphanumeric().to_string()
                }
            })
            .collect();
        let _ = parse(&src);
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let src = format!("listeners: {}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(parse(&src).is_err());
    let src = format!("a: {}", "{b: ".repeat(10_000));
    assert!(parse(&src).is_err());
}
