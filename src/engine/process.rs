//! What fastcache knows about the process it runs in: which process created a value (a
//! forked child keeps using the values it inherited, but only the process that created a
//! value releases it), and whether the interpreter is exiting (no `on_release` runs then).
//!
//! A fork starts a new generation in the child; a value remembers the generation it was
//! created in, so comparing the two tells an inherited value from the child's own without
//! asking the operating system for a process id on every write.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static GENERATION: AtomicU64 = AtomicU64::new(0);
static EXITING: AtomicBool = AtomicBool::new(false);

/// The process a value was created in: equal generations, same process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Generation(u64);

/// This process' generation.
pub fn generation() -> Generation {
    Generation(GENERATION.load(Ordering::Relaxed))
}

/// In a forked child, before anything else: from now on values of the parent are foreign.
pub fn start_new_generation_after_fork() {
    GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// Whether `value_generation` is this process' own.
pub fn created_here(value_generation: Generation) -> bool {
    value_generation == generation()
}

/// The interpreter has begun to exit: values still cached are dropped without release,
/// and fastcache's own threads no longer attach. Sequentially consistent, as the exit
/// hook pairs it with a count of threads about to attach (`bindings::exit_safe`).
pub fn set_exiting() {
    EXITING.store(true, Ordering::SeqCst);
}

pub fn exiting() -> bool {
    EXITING.load(Ordering::SeqCst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fork_makes_earlier_values_foreign_and_later_ones_own() {
        let inherited = generation();
        assert!(created_here(inherited));
        start_new_generation_after_fork();
        assert!(!created_here(inherited));
        assert!(created_here(generation()));
    }
}
