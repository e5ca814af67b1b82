//! The PyO3 layer: everything that touches the interpreter, built on `crate::engine`.
//!
//! - `wrapper`: `CachedFunction` (what the decorator returns), its bound-method form and the
//!   async call objects;
//! - `app`: the hand-overs to `fastcache.streamlit` inside a Streamlit app (miss, replay,
//!   session);
//! - `signature`: binding a call to the function's signature;
//! - `encode`: Python values → argument key, and `hash_funcs`;
//! - `identity`: the parts of a function identity the encoder writes;
//! - `cache`: one function's entries, in-flight computations and callbacks;
//! - `registry`: every cache of the process, by function identity;
//! - `reaper`: the eager expiry thread;
//! - `lifecycle`: fork and interpreter exit;
//! - `options`: the `ttl` argument and the global clear;
//! - `logging`: the bridge to Python's `logging`;
//! - `errors`: the error enum and fastcache's exception classes;
//! - `exit_safe`: calls into Python that a thread ended at interpreter exit survives.

pub mod app;
pub mod cache;
pub mod encode;
pub mod errors;
pub mod exit_safe;
pub mod identity;
pub mod lifecycle;
pub mod logging;
pub mod options;
pub mod reaper;
pub mod registry;
pub mod signature;
pub mod wrapper;
