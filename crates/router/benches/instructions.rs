//! Route lookups for an instruction count: `instructions N ITERS` builds the table of
//! `N` routes, then runs `ITERS` rounds of the benchmark requests inside
//! `measured_lookups`, the only function bench/router_instructions.sh has callgrind
//! count (`--toggle-collect`), so building the table is not part of the figure.

use std::hint::black_box;

use http::{HeaderMap, Method};
use sekisho_router::Router;

mod common;

#[inline(never)]
fn measured_lookups(r: &Router<usize>, reqs: &[(&str, String, String)], iters: usize) -> usize {
    let headers = HeaderMap::new();
    let mut found = 0;
    for _ in 0..iters {
        for (_, host, path) in reqs {
            let m = r.find(black_box(host), black_box(path), &Method::GET, &headers);
            found += black_box(m.map(|m| m.index)).is_some() as usize;
        }
    }
    found
}

fn main() {
    // `cargo bench` passes `--bench`; take the first two numeric arguments.
    let mut nums = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse::<usize>().ok());
    let n = nums.next().unwrap_or(10).max(4);
    let iters = nums.next().unwrap_or(1000);
    let r = common::router(n);
    let reqs = common::requests(n);
    let found = measured_lookups(&r, &reqs, iters);
    assert_eq!(
        found,
        iters * reqs.len(),
        "every benchmark request must match"
    );
    println!("routes {n}: {found} lookups");
}
