//! A barrier between foreign code that may end the current thread and the Rust frames
//! that called it: if the foreign code ends the thread with `pthread_exit` (CPython does,
//! to a thread that asks for the interpreter while it is finalizing), the thread parks
//! for good at the barrier instead of unwinding into the caller.
//!
//! Why: on glibc, `pthread_exit` unwinds the thread's stack (a "forced unwind") up to
//! the thread's start. A Rust frame on the way with a live destructor runs it (without
//! the interpreter), and a `catch_unwind` frame (the Python bindings wrap every method in
//! one, `std` every thread) catches the foreign unwind and aborts the process ("FATAL:
//! exception not rethrown"). CPython's own C code has no such frames, which is why
//! `functools.lru_cache` survives what a Rust caller must guard against.
//!
//! How: POSIX runs a thread's cleanup handlers when it calls `pthread_exit`. The barrier
//! registers one around the foreign call with glibc's `_pthread_cleanup_push`, the
//! original entry point of the `pthread_cleanup_push` macro, which glibc keeps exported
//! and honoured for binaries built against older headers. glibc runs such a handler from
//! the unwinder itself, when the unwind reaches the frame that registered it and before
//! that frame's own clean-up: the handler parks the thread there, so the frames of the
//! caller are never unwound. Only the frames of the foreign call (C, without destructors)
//! are unwound first. The process ends the parked thread when it exits, as CPython 3.14
//! itself parks such threads instead of unwinding them.
//!
//! Other platforms end threads without unwinding them (musl, macOS) or do not use
//! `pthread_exit` for this (Windows): there the barrier is just the call.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Threads parked at a barrier so far (for tests and diagnostics).
static PARKED: AtomicUsize = AtomicUsize::new(0);

/// How many threads have been ended at a barrier and parked there.
pub fn parked_threads() -> usize {
    PARKED.load(Ordering::Relaxed)
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod imp {
    use std::ffi::{c_int, c_void};
    use std::mem::MaybeUninit;

    /// glibc's `struct _pthread_cleanup_buffer` (`<pthread.h>`), linked into the thread's
    /// list of cleanup handlers while registered.
    #[repr(C)]
    pub struct CleanupBuffer {
        routine: Option<unsafe extern "C" fn(*mut c_void)>,
        arg: *mut c_void,
        canceltype: c_int,
        prev: *mut CleanupBuffer,
    }

    extern "C" {
        fn _pthread_cleanup_push(
            buffer: *mut CleanupBuffer,
            routine: unsafe extern "C" fn(*mut c_void),
            arg: *mut c_void,
        );
        fn _pthread_cleanup_pop(buffer: *mut CleanupBuffer, execute: c_int);
    }

    /// The cleanup handler: the thread is being ended; it never returns, so the unwind
    /// never reaches the frames above the barrier.
    unsafe extern "C" fn park_forever(_: *mut c_void) {
        super::PARKED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }

    /// Registers the handler; the buffer must stay where it is until [`pop`].
    ///
    /// # Safety
    /// `buffer` lives in the caller's frame, and [`pop`] is called on it, in the same
    /// frame, before that frame returns.
    #[inline(always)]
    pub unsafe fn push(buffer: &mut MaybeUninit<CleanupBuffer>) {
        // SAFETY: per the contract above; glibc initialises the buffer.
        unsafe { _pthread_cleanup_push(buffer.as_mut_ptr(), park_forever, std::ptr::null_mut()) }
    }

    /// # Safety
    /// `buffer` was registered by [`push`] in this frame and is the latest registered.
    #[inline(always)]
    pub unsafe fn pop(buffer: &mut MaybeUninit<CleanupBuffer>) {
        // SAFETY: per the contract above; 0: the handler is not run.
        unsafe { _pthread_cleanup_pop(buffer.as_mut_ptr(), 0) }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod imp {
    use std::mem::MaybeUninit;

    pub struct CleanupBuffer;

    #[inline(always)]
    pub unsafe fn push(_: &mut MaybeUninit<CleanupBuffer>) {}

    #[inline(always)]
    pub unsafe fn pop(_: &mut MaybeUninit<CleanupBuffer>) {}
}

/// Generates `guardedN`: calls `f` with N arguments behind the barrier. The arguments and
/// the result are `Copy` (raw pointers, integers), so this frame has nothing to clean up,
/// and `f` is called directly from it: no Rust frame stands between `f` and the barrier.
macro_rules! guarded {
    ($(#[$doc:meta])* $name:ident $(, $arg:ident : $ty:ident)*) => {
        $(#[$doc])*
        ///
        /// # Safety
        /// `f` must be safe to call with these arguments.
        #[inline(never)]
        pub unsafe fn $name<$($ty: Copy,)* R: Copy>(
            f: unsafe extern "C-unwind" fn($($ty),*) -> R,
            $($arg: $ty),*
        ) -> R {
            let mut buffer = std::mem::MaybeUninit::uninit();
            // SAFETY: `buffer` stays in this frame and is popped below, before it returns;
            // if `f` ends the thread, the handler parks it and this frame never resumes.
            unsafe {
                imp::push(&mut buffer);
                let result = f($($arg),*);
                imp::pop(&mut buffer);
                result
            }
        }
    };
}

guarded!(
    /// `f()` behind the barrier.
    guarded0
);
guarded!(
    /// `f(a)` behind the barrier.
    guarded1, a: A
);
guarded!(
    /// `f(a, b)` behind the barrier.
    guarded2, a: A, b: B
);
guarded!(
    /// `f(a, b, c)` behind the barrier.
    guarded3, a: A, b: B, c: C
);
guarded!(
    /// `f(a, b, c, d)` behind the barrier.
    guarded4, a: A, b: B, c: C, d: D
);

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::time::{Duration, Instant};

    unsafe extern "C-unwind" fn add(a: u64, b: u64) -> u64 {
        a + b
    }

    #[test]
    fn a_guarded_call_returns_what_the_function_returns() {
        // SAFETY: `add` is safe to call with any arguments.
        let sums: Vec<u64> = (0..3).map(|n| unsafe { guarded2(add, n, 40) }).collect();
        assert_eq!(sums, vec![40, 41, 42]);
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn a_thread_ended_behind_the_barrier_parks_and_its_rust_frames_are_never_unwound() {
        extern "C-unwind" {
            fn pthread_exit(retval: *mut std::ffi::c_void) -> !;
        }
        /// Foreign code that ends the thread, as CPython does at exit.
        unsafe extern "C-unwind" fn end_thread(_: usize) -> usize {
            // SAFETY: ends only the calling thread (the one this test spawned).
            unsafe { pthread_exit(std::ptr::null_mut()) }
        }
        static CANARY_DROPPED: AtomicBool = AtomicBool::new(false);
        struct Canary;
        impl Drop for Canary {
            fn drop(&mut self) {
                CANARY_DROPPED.store(true, Ordering::SeqCst);
            }
        }
        let before = parked_threads();
        // A std thread: its start wraps the closure in `catch_unwind`, which would abort
        // this test process if the unwind reached it.
        std::thread::spawn(|| {
            let _canary = Canary;
            // SAFETY: `end_thread` may be called with any argument.
            unsafe { guarded1(end_thread, 0) };
            unreachable!("the thread was ended");
        });
        let give_up = Instant::now() + Duration::from_secs(10);
        while parked_threads() == before {
            assert!(Instant::now() < give_up, "the ended thread never parked");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(
            !CANARY_DROPPED.load(Ordering::SeqCst),
            "the unwind reached the frames above the barrier"
        );
    }
}
