//! Stack space: how much the current thread has left, and how much fastcache's own threads
//! get.
//!
//! Rust recursion is bounded by the thread's stack, not by `sys.getrecursionlimit()`: the
//! argument encoder recurses into nested values and a cached function calling itself
//! recurses through fastcache. Both check [`remaining`] and stop with an error while
//! [`RED_ZONE`] is left, so a deep input or a deep recursion ends in a Python
//! `RecursionError` on any thread, whatever its stack size, never in a segfault.
//!
//! A background refresh runs the user's function on a refresh worker, so a recursion that
//! works in the foreground must work there too: fastcache's threads get at least the stack
//! of the process' main thread (its `RLIMIT_STACK`, 8 MiB on most systems), not Rust's
//! 2 MiB default. The memory is reserved, not used: pages are touched only as the stack
//! grows.

use std::cell::Cell;

/// Stack kept free for what runs between two checks: fastcache's frames down to the next
/// check, and the Python code they call (one level of the user's function, a hash
/// function, `__reduce_ex__`), which CPython 3.11 does not bound by stack itself.
pub const RED_ZONE: usize = 64 << 10;

thread_local! {
    /// The lowest usable address of this thread's stack; 0 until looked up, 1 if unknown.
    static STACK_LIMIT: Cell<usize> = const { Cell::new(0) };
}

/// Bytes of stack left below the caller's frame, `None` where the platform does not say.
#[inline]
pub fn remaining() -> Option<usize> {
    let here = {
        let marker = 0u8;
        std::hint::black_box(&marker) as *const u8 as usize
    };
    let limit = STACK_LIMIT.try_with(|cached| {
        if cached.get() == 0 {
            cached.set(stack_limit().unwrap_or(1));
        }
        cached.get()
    });
    match limit {
        Ok(limit) if limit > 1 => Some(here.saturating_sub(limit)),
        _ => None,
    }
}

/// Whether less than [`RED_ZONE`] is left: the caller should stop recursing.
#[inline]
pub fn nearly_exhausted() -> bool {
    remaining().is_some_and(|left| left < RED_ZONE)
}

/// The lowest address of the current thread's stack (stacks grow down on every platform
/// fastcache is built for), plus the guard page.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn stack_limit() -> Option<usize> {
    let mut attr = std::mem::MaybeUninit::<libc::pthread_attr_t>::uninit();
    // SAFETY: `pthread_getattr_np` initialises `attr` for the calling thread when it
    // returns 0; it is destroyed below after the two reads.
    unsafe {
        if libc::pthread_getattr_np(libc::pthread_self(), attr.as_mut_ptr()) != 0 {
            return None;
        }
        let mut addr: *mut libc::c_void = std::ptr::null_mut();
        let mut size: libc::size_t = 0;
        let read = libc::pthread_attr_getstack(attr.as_ptr(), &mut addr, &mut size);
        let mut guard: libc::size_t = 0;
        let guard_read = libc::pthread_attr_getguardsize(attr.as_ptr(), &mut guard);
        libc::pthread_attr_destroy(attr.as_mut_ptr());
        if read != 0 || addr.is_null() {
            return None;
        }
        let guard = if guard_read == 0 { guard } else { 0 };
        Some(addr as usize + guard)
    }
}

#[cfg(target_os = "macos")]
fn stack_limit() -> Option<usize> {
    // SAFETY: both only read the calling thread's own attributes.
    unsafe {
        let this = libc::pthread_self();
        let top = libc::pthread_get_stackaddr_np(this) as usize;
        let size = libc::pthread_get_stacksize_np(this);
        top.checked_sub(size)
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "macos")))]
fn stack_limit() -> Option<usize> {
    None
}

/// The stack every thread fastcache starts gets.
pub fn own_thread_stack_size() -> usize {
    /// What Linux gives a main thread by default, and the floor.
    const FLOOR: usize = 8 << 20;
    /// An unlimited (or absurd) limit still needs a finite reservation.
    const CEILING: usize = 256 << 20;
    main_thread_limit().unwrap_or(FLOOR).clamp(FLOOR, CEILING)
}

#[cfg(unix)]
fn main_thread_limit() -> Option<usize> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `getrlimit` writes the limit into the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_STACK, &mut limit) } != 0 {
        return None;
    }
    if limit.rlim_cur == libc::RLIM_INFINITY {
        return Some(usize::MAX);
    }
    usize::try_from(limit.rlim_cur).ok()
}

#[cfg(not(unix))]
fn main_thread_limit() -> Option<usize> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_left_shrinks_as_the_stack_grows_and_is_known_on_any_thread() {
        fn left_after(depth: usize) -> usize {
            let pad = [depth as u8; 512];
            std::hint::black_box(&pad);
            if depth == 0 {
                return remaining().expect("known on this platform");
            }
            left_after(depth - 1)
        }
        let shallow = left_after(0);
        let deep = left_after(64);
        assert!(deep + 64 * 512 <= shallow, "{deep} vs {shallow}");
        // A small thread: most of its 256 KiB is left at its start, none beyond it.
        let on_small = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(|| remaining().expect("known"))
            .unwrap()
            .join()
            .unwrap();
        assert!(on_small < 256 << 10 && on_small > 128 << 10, "{on_small}");
    }

    #[test]
    fn recursion_that_stops_at_the_red_zone_never_overflows() {
        fn descend(depth: usize) -> usize {
            if nearly_exhausted() {
                return depth;
            }
            let pad = [depth as u8; 2048];
            std::hint::black_box(&pad);
            descend(depth + 1)
        }
        let reached = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(|| descend(0))
            .unwrap()
            .join()
            .expect("stopped before the end of the stack");
        assert!(reached > 20, "{reached}");
    }

    #[test]
    fn own_threads_get_at_least_the_main_threads_stack() {
        let size = own_thread_stack_size();
        assert!(size >= 8 << 20);
        if let Some(limit) = main_thread_limit() {
            assert!(size >= limit.min(256 << 20));
        }
        // A thread of that size starts and can use most of it.
        let used = std::thread::Builder::new()
            .stack_size(size)
            .spawn(move || {
                fn deep(n: usize) -> usize {
                    let pad = [n as u8; 1024];
                    if n == 0 {
                        return pad[0] as usize;
                    }
                    std::hint::black_box(&pad);
                    deep(n - 1) + 1
                }
                deep(4 * 1024) // about 4 MiB of frames: more than Rust's 2 MiB default
            })
            .expect("spawn")
            .join()
            .expect("no overflow");
        assert_eq!(used, 4 * 1024);
    }
}
