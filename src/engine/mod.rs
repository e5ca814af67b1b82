//! The cache's policy in plain Rust, with no interpreter and no Python types in sight:
//! everything here is unit-tested with `cargo test` alone.
//!
//! - `key`: the type-tagged, length-prefixed argument encoding a cache entry is keyed by;
//! - `buffer_hash`: the 128-bit keyed digest of large byte buffers, strided or not;
//! - `store`: one function's LRU map with a ttl, handing back every value it lets go;
//! - `clock`: the exact clock writes read, and the coarse one hits judge expiry by;
//! - `expiry_hint`: a lock-free "nothing expires before" mark for the expiry reaper;
//! - `flight`: one in-flight computation that other callers wait for (single flight);
//! - `ttl`: the pandas-style duration grammar of `ttl` strings;
//! - `workers`: the bounded pool that runs background refreshes;
//! - `fork_fresh`: process-wide state that a forked child starts afresh;
//! - `process`: which process created a value (fork), and whether the interpreter exits;
//! - `human`: durations as people read them ("59m 58s"), for logs, reprs and messages;
//! - `stack`: the stack fastcache's own threads get;
//! - `exit_barrier`: parks a thread that foreign code ends with `pthread_exit` before the
//!   unwind reaches Rust frames.

pub mod buffer_hash;
pub mod clock;
pub mod exit_barrier;
pub mod expiry_hint;
pub mod flight;
pub mod fork_fresh;
pub mod human;
pub mod key;
pub mod key_table;
pub mod process;
pub mod stack;
pub mod store;
pub mod ttl;
pub mod waits;
pub mod workers;
