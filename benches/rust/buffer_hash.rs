//! The large-buffer digest against its yardstick and its alternative: a `memcpy` of the same
//! bytes (the "≤ 1.5× a memory copy" target), fastcache's keyed XXH3-128
//! (`engine::buffer_hash::digest`), and keyed BLAKE3 — single-threaded (its SIMD code is
//! chosen at run time) and on rayon's thread pool. Interleaved, minimum of several repeats,
//! reported as ratios to the copy. The figures behind the choice in `buffer_hash.rs` and
//! the README.
//!
//! `cargo bench --bench buffer_hash --features compare-blake3` (BLAKE3 is compiled only for
//! this comparison; `-- 104857600 15` sets the size in bytes and the repeats).

use std::hint::black_box;
use std::time::Instant;

use _fastcache::engine::buffer_hash::digest;

/// Seconds of the fastest of `repeats` runs of `run`.
fn fastest(repeats: usize, mut run: impl FnMut()) -> f64 {
    (0..repeats)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    // `cargo bench` passes `--bench`; the numbers are the optional size and repeats.
    let numbers: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let size = numbers.first().copied().unwrap_or(100 * 1024 * 1024);
    let repeats = numbers.get(1).copied().unwrap_or(15);
    let data: Vec<u8> = (0..size)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8)
        .collect();
    let mut copy = vec![0u8; size];
    let key = [7u8; 32];

    let mut best = [f64::INFINITY; 4];
    // Interleaved: each round runs every case once per repeat, so a busy moment of the
    // machine touches them all alike.
    for _ in 0..3 {
        let round = [
            fastest(repeats, || {
                copy.copy_from_slice(&data);
                black_box(&copy);
            }),
            fastest(repeats, || {
                black_box(digest(&data));
            }),
            fastest(repeats, || {
                let mut hasher = blake3::Hasher::new_keyed(&key);
                hasher.update(&data);
                black_box(hasher.finalize());
            }),
            fastest(repeats, || {
                let mut hasher = blake3::Hasher::new_keyed(&key);
                hasher.update_rayon(&data);
                black_box(hasher.finalize());
            }),
        ];
        for (b, r) in best.iter_mut().zip(round) {
            *b = b.min(r);
        }
    }
    let names = [
        "memcpy (the yardstick)",
        "XXH3-128, keyed (fastcache)",
        "BLAKE3 keyed, one thread",
        "BLAKE3 keyed, rayon pool",
    ];
    println!(
        "{} MB, fastest of {} repeats x 3 rounds, {} threads available",
        size / (1024 * 1024),
        repeats,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    for (name, seconds) in names.iter().zip(best) {
        println!(
            "  {name:30} {:8.2} ms  {:5.2}x memcpy  {:6.2} GB/s",
            seconds * 1e3,
            seconds / best[0],
            size as f64 / seconds / 1e9
        );
    }
}
