//! Who waits for whom: the waiting cycles that single flight could otherwise turn into a
//! hang. A participant (a thread, or an asyncio task) that is about to wait for a
//! computation owned by another participant adds an edge; if the owner is itself waiting,
//! directly or down a chain, for a computation the new waiter owns, the wait would never
//! end, and the would-be waiter is told so instead (it raises).
//!
//! Plain Rust, generic over what is waited for: the bindings wait for flights. The graph
//! stays acyclic (every edge is checked as it is added), so a walk from any participant
//! ends within as many steps as there are waiting participants.

use std::collections::HashMap;
use std::thread::ThreadId;

/// A thread (waiting synchronously), or an asyncio task (identified by its address, which
/// stays valid while it owns a computation or waits for one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Participant {
    Thread(ThreadId),
    Task(usize),
}

/// Something a participant waits for: a computation with an owner, which may be over
/// (an edge to a finished computation no longer blocks anyone: its waiter is waking up).
pub trait Awaited {
    fn owner(&self) -> Participant;
    fn is_over(&self) -> bool;
    fn same_as(&self, other: &Self) -> bool;
}

pub struct WaitGraph<A> {
    /// Each waiting participant's waits, innermost last (a signal handler run during a
    /// wait may wait again).
    waiting: HashMap<Participant, Vec<A>>,
}

impl<A> Default for WaitGraph<A> {
    fn default() -> Self {
        WaitGraph {
            waiting: HashMap::new(),
        }
    }
}

impl<A: Awaited + Clone> WaitGraph<A> {
    /// Records that `waiter` waits for `on` — unless that closes a cycle: then nothing is
    /// recorded and `Err` holds what is waited for along the cycle, `on` first, then what
    /// `on`'s owner waits for, and so on back to something `waiter` owns.
    pub fn begin(&mut self, waiter: Participant, on: &A) -> Result<(), Vec<A>> {
        let mut cycle = vec![on.clone()];
        if !on.is_over() {
            let mut node = on.owner();
            for _ in 0..=self.waiting.len() {
                if node == waiter {
                    return Err(cycle);
                }
                let Some(next) = self.waiting.get(&node).and_then(|waits| waits.last()) else {
                    break;
                };
                if next.is_over() {
                    break;
                }
                cycle.push(next.clone());
                node = next.owner();
            }
        }
        self.waiting.entry(waiter).or_default().push(on.clone());
        Ok(())
    }

    /// `waiter` no longer waits for `on`. Returns the recorded entry, for the caller to
    /// drop where it chooses (the bindings drop it after releasing their lock).
    pub fn end(&mut self, waiter: Participant, on: &A) -> Option<A> {
        let waits = self.waiting.get_mut(&waiter)?;
        let at = waits.iter().rposition(|recorded| recorded.same_as(on))?;
        let gone = waits.remove(at);
        if waits.is_empty() {
            self.waiting.remove(&waiter);
        }
        Some(gone)
    }

    /// Forgets every wait (in a forked child, whose other threads do not exist).
    pub fn take_all(&mut self) -> Vec<A> {
        self.waiting.drain().flat_map(|(_, waits)| waits).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    /// A computation owned by task `owner`, labelled `name`.
    #[derive(Clone, Debug)]
    struct Job {
        name: &'static str,
        owner: Participant,
        over: Rc<Cell<bool>>,
    }

    fn job(name: &'static str, owner: usize) -> Job {
        Job {
            name,
            owner: Participant::Task(owner),
            over: Rc::new(Cell::new(false)),
        }
    }

    impl Awaited for Job {
        fn owner(&self) -> Participant {
            self.owner
        }
        fn is_over(&self) -> bool {
            self.over.get()
        }
        fn same_as(&self, other: &Self) -> bool {
            Rc::ptr_eq(&self.over, &other.over)
        }
    }

    fn names(cycle: Vec<Job>) -> Vec<&'static str> {
        cycle.into_iter().map(|j| j.name).collect()
    }

    const T1: Participant = Participant::Task(1);
    const T2: Participant = Participant::Task(2);
    const T3: Participant = Participant::Task(3);

    #[test]
    fn two_participants_waiting_for_each_other_is_a_cycle() {
        let (a, b) = (job("A", 1), job("B", 2));
        let mut graph = WaitGraph::default();
        assert!(graph.begin(T1, &b).is_ok(), "1 computes A and waits for B");
        let cycle = graph
            .begin(T2, &a)
            .expect_err("2 computes B and waits for A");
        assert_eq!(names(cycle), ["A", "B"]);
    }

    #[test]
    fn a_longer_cycle_names_every_step_and_waiting_for_oneself_is_one() {
        let (a, b, c) = (job("A", 1), job("B", 2), job("C", 3));
        let mut graph = WaitGraph::default();
        graph.begin(T1, &b).unwrap();
        graph.begin(T2, &c).unwrap();
        assert_eq!(names(graph.begin(T3, &a).unwrap_err()), ["A", "B", "C"]);
        assert_eq!(names(graph.begin(T1, &a).unwrap_err()), ["A"]);
    }

    #[test]
    fn independent_waiters_on_one_computation_are_no_cycle() {
        let a = job("A", 1);
        let mut graph = WaitGraph::default();
        for waiter in 2..10 {
            assert!(graph.begin(Participant::Task(waiter), &a).is_ok());
        }
        let other_thread = Participant::Thread(std::thread::current().id());
        assert!(graph.begin(other_thread, &a).is_ok());
    }

    #[test]
    fn a_wait_for_a_finished_computation_blocks_nobody() {
        // 1 waited for B, which is over; 1 has not woken yet when 2 asks for A, which 1
        // owns: 1 will finish A, so 2 may wait.
        let (a, b) = (job("A", 1), job("B", 2));
        let mut graph = WaitGraph::default();
        graph.begin(T1, &b).unwrap();
        b.over.set(true);
        assert!(graph.begin(T2, &a).is_ok());
    }

    #[test]
    fn an_ended_wait_is_forgotten_and_only_that_one() {
        let (a, b, c) = (job("A", 1), job("B", 2), job("C", 3));
        let mut graph = WaitGraph::default();
        graph.begin(T1, &b).unwrap();
        graph.begin(T1, &c).unwrap(); // nested: a wait inside a wait
        assert_eq!(graph.end(T1, &c).map(|j| j.name), Some("C"));
        assert!(graph.begin(T2, &a).is_err(), "1 still waits for B");
        assert_eq!(graph.end(T1, &b).map(|j| j.name), Some("B"));
        assert!(graph.end(T1, &b).is_none());
        assert!(graph.begin(T2, &a).is_ok());
        assert_eq!(graph.take_all().len(), 1);
        assert!(graph.begin(T1, &b).is_ok());
    }
}
