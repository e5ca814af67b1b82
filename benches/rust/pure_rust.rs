//! Criterion benches of the pure-Rust parts (no interpreter): the key encoder, the
//! LRU/ttl store (and the in-flight table a miss passes through), the clocks a ttl hit reads, the expiry reaper's look at a large store,
//! and the ttl string parser.
//! They isolate what a cache hit (or an expiry pass) costs on the Rust side, so a
//! regression there shows without the noise of the Python-level benches in
//! `benches/bench_cache.py`.
//!
//! Run with `cargo bench --bench pure_rust` (`-- --quick` for a short run).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};

use _fastcache::engine::clock::{self, Deadline, HitTime, Now};
use _fastcache::engine::key::{Key, KeyWriter, Tag};
use _fastcache::engine::key_table::KeyTable;
use _fastcache::engine::store::{LiveLookup, Lookup, Removed, Store, Ttl};
use _fastcache::engine::ttl::parse_ttl_str;

/// The key of `f(42, "model-a")`: what the bindings write for the benchmark's hit case.
fn hit_key(x: i64, name: &str) -> Key {
    let mut w = KeyWriter::new();
    w.small_int(x);
    w.tagged_bytes(Tag::Str, name.as_bytes());
    w.finish().to_key()
}

fn int_key(n: i64) -> Key {
    let mut w = KeyWriter::new();
    w.small_int(n);
    w.finish().to_key()
}

fn key_encoder(c: &mut Criterion) {
    let mut group = c.benchmark_group("key");
    group.bench_function("int + str (f(42, \"model-a\"))", |b| {
        b.iter(|| hit_key(black_box(42), black_box("model-a")))
    });
    group.bench_function("tuple of 16 ints", |b| {
        b.iter(|| {
            let mut w = KeyWriter::new();
            w.sequence(Tag::Tuple, 16);
            for i in 0..16 {
                w.small_int(black_box(i));
            }
            w.finish()
        })
    });
    // A set's items are encoded on their own and sorted, so the key ignores order.
    let items: Vec<Vec<u8>> = (0..8)
        .map(|i| {
            let mut w = KeyWriter::new();
            w.tagged_bytes(Tag::Str, format!("item-{i}").as_bytes());
            w.into_bytes()
        })
        .rev()
        .collect();
    group.bench_function("set of 8 strs", |b| {
        b.iter_batched(
            || items.clone(),
            |items| {
                let mut w = KeyWriter::new();
                w.unordered(Tag::Set, items);
                w.finish()
            },
            BatchSize::SmallInput,
        )
    });
    for size in [1usize << 10, 1 << 20] {
        let blob = vec![7u8; size];
        group.bench_with_input(BenchmarkId::new("bytes", size), &blob, |b, blob| {
            b.iter(|| {
                let mut w = KeyWriter::new();
                w.tagged_bytes(Tag::Bytes, black_box(blob));
                w.finish()
            })
        });
    }
    group.finish();
}

fn store(c: &mut Criterion) {
    let mut group = c.benchmark_group("store");
    let now = Instant::now();

    // Hits: the unbounded store (no recency bookkeeping needed) and the bounded one with a
    // ttl (recency refreshed, expiry checked), each holding 1,000 entries.
    for (label, ttl, max_entries) in [
        ("hit, no ttl, unbounded", Ttl::Never, None),
        (
            "hit, ttl 1h, max_entries 1000",
            Ttl::After(Duration::from_secs(3600)),
            Some(1000),
        ),
    ] {
        let mut store: Store<u64> = Store::new(ttl, max_entries);
        let mut removed = Vec::new();
        for n in 0..1000 {
            store.insert(int_key(n), n as u64, now, &mut removed);
        }
        let probe = int_key(500);
        group.bench_function(label, |b| {
            b.iter(|| match store.get(black_box(&probe), now) {
                Lookup::Hit(v, ..) => *v,
                _ => unreachable!("the probe key is stored"),
            })
        });
    }

    // Miss + insert: 10,000 keys cycling through 1,000 slots, so every insert evicts the
    // least recently used entry (the Rust half of benchmark case 4).
    let keys: Vec<Key> = (0..10_000).map(int_key).collect();
    let mut store: Store<u64> = Store::new(Ttl::Never, Some(1000));
    let mut removed: Vec<Removed<u64>> = Vec::with_capacity(4);
    let mut next = 0usize;
    group.bench_function("insert evicting, max_entries 1000", |b| {
        b.iter(|| {
            let key = keys[next % keys.len()].clone();
            next += 1;
            store.insert(key, next as u64, now, &mut removed);
            removed.clear();
        })
    });
    // A miss's round trip through the in-flight table: one hash (the store's hasher)
    // serves the insert, the remove and the store write that follows.
    let mut inflight: KeyTable<u64> = KeyTable::with_hasher(ahash::RandomState::new());
    let probe = int_key(7);
    group.bench_function("in-flight insert + remove, hashed once", |b| {
        b.iter(|| {
            let hash = inflight.hash_of(black_box(&probe));
            inflight.insert_hashed(hash, probe.clone(), 1);
            black_box(inflight.remove_entry_hashed(&probe, hash))
        })
    });
    // The same ttl hit judged the way a cache hit judges it: a coarse clock reading, the
    // exact clock only near a deadline.
    let mut store: Store<u64> = Store::new(Ttl::After(Duration::from_secs(3600)), Some(1000));
    for n in 0..1000 {
        store.insert(int_key(n), n as u64, Instant::now(), &mut Vec::new());
    }
    let probe = int_key(500);
    group.bench_function("hit, ttl 1h, max_entries 1000, reading the clock", |b| {
        b.iter(|| match store.get(black_box(&probe), HitTime::read()) {
            Lookup::Hit(v, ..) => *v,
            _ => unreachable!("the probe key is stored"),
        })
    });
    // The lookup of a call's plain hit (`get_live`: nothing taken out on the way).
    let probe = hit_key(42, "model-a");
    store.insert(probe.clone(), 7, Instant::now(), &mut Vec::new());
    group.bench_function("plain hit (get_live), ttl 1h, max_entries 1000", |b| {
        b.iter(
            || match store.get_live(black_box(&probe), HitTime::read()) {
                LiveLookup::Hit(v, ..) => *v,
                _ => unreachable!("the probe key is stored"),
            },
        )
    });
    group.finish();
}

/// What a hit with a ttl pays for the time: the exact clock, against the coarse reading
/// hits use (and the exact read it falls back to near a deadline).
fn clocks(c: &mut Criterion) {
    let mut group = c.benchmark_group("clock");
    group.bench_function("exact (Instant::now)", |b| b.iter(clock::exact));
    group.bench_function("hit time (coarse read)", |b| b.iter(HitTime::read));
    let far = Deadline::new(Instant::now() + Duration::from_secs(3600));
    group.bench_function("hit time, deadline far", |b| {
        b.iter(|| HitTime::read().reached(black_box(&far)))
    });
    // Closer than the coarse clock is trusted: the exact clock decides.
    let near = Deadline::new(Instant::now() + Duration::from_secs(3600 * 24));
    group.bench_function("deadline near (exact read)", |b| {
        b.iter(|| HitTime::unused().reached(black_box(&near)))
    });
    group.finish();
}

/// The expiry reaper's work on a store of 1,000,000 live entries: looking when nothing is
/// due, and taking out the 1,000 entries that are, must cost what those entries cost, not
/// what scanning the million live ones would.
fn reaper(c: &mut Criterion) {
    let mut group = c.benchmark_group("reaper, 1M live entries");
    let t0 = Instant::now();
    let ttl = Ttl::After(Duration::from_secs(3600));
    let mut store: Store<u64> = Store::new(ttl, None);
    let mut removed = Vec::new();
    let live_from = t0 + Duration::from_secs(10);
    for n in 0..1_000_000 {
        let written = live_from + Duration::from_micros(n as u64);
        store.insert(int_key(n), n as u64, written, &mut removed);
    }
    let now = t0 + Duration::from_secs(3600) + Duration::from_millis(1);
    group.bench_function("nothing due", |b| {
        b.iter(|| {
            let reaped = store.reap_expired(black_box(now), usize::MAX);
            (reaped.len(), store.next_expiry())
        })
    });
    let due_keys: Vec<Key> = (0..1_000).map(|n| int_key(-1 - n)).collect();
    group.bench_function("1,000 due", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                for (n, key) in due_keys.iter().enumerate() {
                    let written = t0 + Duration::from_nanos(n as u64);
                    store.insert(key.clone(), 0, written, &mut removed);
                }
                let start = Instant::now();
                let reaped = store.reap_expired(black_box(now), usize::MAX);
                timed += start.elapsed();
                assert_eq!(reaped.len(), 1_000);
            }
            timed
        })
    });
    group.finish();
}

fn ttl_parser(c: &mut Criterion) {
    let mut group = c.benchmark_group("ttl");
    for text in [
        "1h",
        "1d2h34m",
        "1.5 days",
        "1 days 02:03:04",
        "PT1H30M",
        "1M",
    ] {
        group.bench_with_input(BenchmarkId::from_parameter(text), text, |b, text| {
            // "1M" is rejected (months are ambiguous): the error path is timed too.
            b.iter(|| parse_ttl_str(black_box(text)).is_ok())
        });
    }
    group.finish();
}

criterion_group!(benches, key_encoder, store, clocks, reaper, ttl_parser);
criterion_main!(benches);
