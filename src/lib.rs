//! fastcache's native module, `fastcache._fastcache`: declarations and exports only.
//!
//! Pure Rust (no interpreter in sight): `key` (argument encoding), `store` (LRU + ttl
//! table), `flight` (single flight), `ttl` (duration strings), `workers` (refresh pool).
//! Bindings: `encode`
//! (arguments → key), `cache` (per-function cache and registry), `wrapper` (the callable
//! objects), `options` (decoration-time parsing), `reaper` (eager expiry), `lifecycle`
//! (fork and exit), `errors`.

pub mod buffer_hash;
pub mod cache;
pub mod encode;
pub mod encode_data;
pub mod encode_objects;
pub mod errors;
pub mod flight;
pub mod fork_fresh;
pub mod key;
pub mod lifecycle;
pub mod options;
pub mod reaper;
pub mod store;
pub mod ttl;
pub mod workers;
pub mod wrapper;

use pyo3::prelude::*;

#[pymodule(gil_used = true)]
mod _fastcache {
    use pyo3::prelude::*;

    #[pymodule_export]
    use crate::errors::{
        BadTTLStringError, ReentrantCallError, SessionScopeError, UnhashableParamError,
        UserHashError,
    };
    #[pymodule_export]
    use crate::lifecycle::{after_fork_in_child, shutdown};
    #[pymodule_export]
    use crate::options::{clear_all, refresh_logging, ttl_seconds};
    #[pymodule_export]
    use crate::wrapper::{
        AsyncCall, BoundCachedMethod, CachedFunction, FlightWaiter, PendingEntry,
    };

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        crate::wrapper::mark_method_descriptor(m.py());
        crate::options::init_logging(m.py())
    }
}
