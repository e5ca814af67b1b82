//! Stack space: how much fastcache's own threads get.
//!
//! A background refresh runs the user's function on a refresh worker, so a recursion that
//! works in the foreground must work there too: fastcache's threads get at least the stack
//! of the process' main thread (its `RLIMIT_STACK`, 8 MiB on most systems), not Rust's
//! 2 MiB default. The memory is reserved, not used: pages are touched only as the stack
//! grows.

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
