//! fastcache's native module, `fastcache._fastcache`: declarations and exports only.
//!
//! `engine` is the cache's policy in plain Rust (argument keys, the LRU/ttl store, single
//! flight, the ttl grammar, the refresh pool), with no `pyo3` in it; `bindings` is the PyO3
//! layer that drives it from Python.

pub mod bindings;
pub mod engine;

use pyo3::prelude::*;

#[pymodule(gil_used = true)]
mod _fastcache {
    use pyo3::prelude::*;

    #[pymodule_export]
    use crate::bindings::encode::interner::interned_count;
    #[pymodule_export]
    use crate::bindings::errors::{
        use_app_error_types, BadTTLStringError, ReentrantCallError, SessionScopeError,
        UnhashableParamError, UserHashError,
    };
    #[pymodule_export]
    use crate::bindings::identity::{content_bytes, identity_bytes};
    #[pymodule_export]
    use crate::bindings::lifecycle::{after_fork_in_child, shutdown};
    #[pymodule_export]
    use crate::bindings::logging::set_debug_logging;
    #[pymodule_export]
    use crate::bindings::options::{clear_all, clear_session, ttl_seconds};
    #[pymodule_export]
    use crate::bindings::wrapper::{
        AsyncCall, AsyncRefresh, BoundCachedMethod, CachedFunction, FlightWaiter, PendingEntry,
    };

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        crate::bindings::wrapper::install_call_protocol(m.py())
    }
}
