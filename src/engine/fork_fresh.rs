//! Process-wide state that a forked child must not inherit: the bookkeeping of threads
//! (reaper, refresh workers) that do not exist in the child, whose locks they may have
//! held at the moment of the fork. The child gets a new instance; the parent's is left
//! untouched and never freed (the child cannot know what state its copy is in).

use std::sync::atomic::{AtomicPtr, Ordering};

pub struct ForkFresh<T> {
    current: AtomicPtr<T>,
    make: fn() -> T,
}

impl<T> ForkFresh<T> {
    pub const fn new(make: fn() -> T) -> Self {
        ForkFresh {
            current: AtomicPtr::new(std::ptr::null_mut()),
            make,
        }
    }

    /// The current instance, made on first use.
    pub fn get(&'static self) -> &'static T {
        let current = self.current.load(Ordering::Acquire);
        if !current.is_null() {
            // SAFETY: published only from `Box::into_raw` below and never freed.
            return unsafe { &*current };
        }
        let fresh = Box::into_raw(Box::new((self.make)()));
        match self.current.compare_exchange(
            std::ptr::null_mut(),
            fresh,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            // SAFETY: just published; never freed.
            Ok(_) => unsafe { &*fresh },
            Err(winner) => {
                // SAFETY: `fresh` was never published, so it is ours to free.
                drop(unsafe { Box::from_raw(fresh) });
                // SAFETY: published by the winner, never freed.
                unsafe { &*winner }
            }
        }
    }

    /// Forgets the current instance (the next `get` makes a new one) and returns it, for
    /// reading what the parent had. Only in a forked child.
    pub fn renew(&'static self) -> Option<&'static T> {
        let old = self.current.swap(std::ptr::null_mut(), Ordering::AcqRel);
        // SAFETY: published by `get` and never freed.
        (!old.is_null()).then(|| unsafe { &*old })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renew_gives_a_new_instance_and_the_old_one_back() {
        static STATE: ForkFresh<std::sync::atomic::AtomicUsize> =
            ForkFresh::new(|| std::sync::atomic::AtomicUsize::new(0));
        STATE.get().store(7, Ordering::Relaxed);
        assert_eq!(STATE.get().load(Ordering::Relaxed), 7);
        let old = STATE.renew().expect("an instance existed");
        assert_eq!(old.load(Ordering::Relaxed), 7);
        assert_eq!(STATE.get().load(Ordering::Relaxed), 0);
    }
}
