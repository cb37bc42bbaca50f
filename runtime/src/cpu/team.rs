//! A small fork-join thread team for the forward pass.
//!
//! A forward pass issues dozens of short parallel steps (one per matrix product, attention
//! and normalisation); waking sleeping threads for each costs tens of microseconds, as much as
//! a small product itself. The team's workers spin briefly between steps and only then sleep,
//! so consecutive steps hand work over in well under a microsecond.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long an idle worker spins before it sleeps.
const SPIN: Duration = Duration::from_micros(200);

type Task = dyn Fn(usize) + Sync;

struct Shared {
    /// `(generation << 32) | next task index`: claiming a task and checking that it belongs to
    /// the current step is one compare-and-swap.
    state: AtomicU64,
    /// Tasks of the current step not yet finished.
    remaining: AtomicUsize,
    /// The current step as one snapshot — (generation, task count, function) — so that a
    /// worker never pairs one step's function or count with another step's generation. The
    /// function is valid while tasks of its generation are unfinished.
    job: Mutex<Option<(u64, usize, &'static Task)>>,
    panicked: AtomicBool,
    shutdown: AtomicBool,
    sleep: Mutex<()>,
    wake: Condvar,
}

/// A team of `size` threads: the caller plus `size - 1` workers.
pub struct Team {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    size: usize,
    /// Serialises concurrent callers (a model may be shared between threads).
    busy: Mutex<()>,
}

impl Team {
    /// Starts `size - 1` worker threads.
    pub fn new(size: usize) -> std::io::Result<Team> {
        let shared = Arc::new(Shared {
            state: AtomicU64::new(0),
            remaining: AtomicUsize::new(0),
            job: Mutex::new(None),
            panicked: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
            sleep: Mutex::new(()),
            wake: Condvar::new(),
        });
        let mut workers = Vec::new();
        for i in 1..size.max(1) {
            let s = shared.clone();
            workers.push(std::thread::Builder::new().name(format!("bertling-{i}")).spawn(move || worker(&s))?);
        }
        Ok(Team { shared, workers, size: size.max(1), busy: Mutex::new(()) })
    }

    /// Threads in the team, the caller included.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Runs `f(0) .. f(tasks - 1)` on the team and returns when all have finished.
    pub fn run(&self, tasks: usize, f: &(dyn Fn(usize) + Sync)) {
        if tasks == 0 {
            return;
        }
        if self.size == 1 || tasks == 1 {
            (0..tasks).for_each(f);
            return;
        }
        let _guard = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        let s = &*self.shared;
        // SAFETY: the reference is only used by workers while `remaining > 0`, and this call
        // does not return before `remaining` reaches 0; the lifetime is erased for storage.
        let f_static: &'static Task = unsafe { std::mem::transmute::<&(dyn Fn(usize) + Sync + '_), &'static Task>(f) };
        let gen = (s.state.load(Ordering::Relaxed) >> 32).wrapping_add(1) & 0xFFFF_FFFF;
        *s.job.lock().unwrap_or_else(|e| e.into_inner()) = Some((gen, tasks, f_static));
        s.remaining.store(tasks, Ordering::Relaxed);
        // Publishing the generation opens the step; claims of older generations now fail.
        s.state.store(gen << 32, Ordering::Release);
        {
            let _g = s.sleep.lock().unwrap_or_else(|e| e.into_inner());
            s.wake.notify_all();
        }
        work(s, gen, tasks, f_static);
        while s.remaining.load(Ordering::Acquire) != 0 {
            std::hint::spin_loop();
        }
        *s.job.lock().unwrap_or_else(|e| e.into_inner()) = None;
        if s.panicked.swap(false, Ordering::Relaxed) {
            panic!("a bertling worker thread panicked");
        }
    }
}

/// Claims and runs tasks of generation `gen` (which has `tasks` tasks) until none are left. A
/// claim is a compare-and-swap on (generation, next index), so it fails once the step is over.
fn work(s: &Shared, gen: u64, tasks: usize, f: &Task) {
    let tasks = tasks as u64;
    loop {
        let cur = s.state.load(Ordering::Acquire);
        if cur >> 32 != gen || (cur & 0xFFFF_FFFF) >= tasks {
            return;
        }
        if s.state.compare_exchange_weak(cur, cur + 1, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
            let t = (cur & 0xFFFF_FFFF) as usize;
            if catch_unwind(AssertUnwindSafe(|| f(t))).is_err() {
                s.panicked.store(true, Ordering::Relaxed);
            }
            s.remaining.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

fn worker(s: &Shared) {
    let mut seen = 0u64;
    loop {
        // Wait for a new generation: spin first, then sleep.
        let start = Instant::now();
        let mut spins = 0u32;
        let gen = loop {
            if s.shutdown.load(Ordering::Relaxed) {
                return;
            }
            let g = s.state.load(Ordering::Acquire) >> 32;
            if g != seen {
                break g;
            }
            spins += 1;
            if spins.is_multiple_of(64) && start.elapsed() > SPIN {
                let guard = s.sleep.lock().unwrap_or_else(|e| e.into_inner());
                if s.state.load(Ordering::Acquire) >> 32 == seen && !s.shutdown.load(Ordering::Relaxed) {
                    let _ = s.wake.wait_timeout(guard, Duration::from_millis(50));
                }
            } else {
                std::hint::spin_loop();
            }
        };
        seen = gen;
        // The snapshot is stored before its generation is published. Work only on the step
        // whose generation was seen: a later snapshot means that step is already over.
        let job = *s.job.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((g, tasks, f)) = job {
            if g == gen {
                work(s, gen, tasks, f);
            }
        }
    }
}

impl Drop for Team {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::Relaxed);
        {
            let _g = self.shared.sleep.lock().unwrap_or_else(|e| e.into_inner());
            self.shared.wake.notify_all();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_runs_once_per_step() {
        for size in [1, 2, 3] {
            let team = Team::new(size).unwrap();
            for step in 0..2000 {
                let n = 1 + step % 7;
                let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
                team.run(n, &|t| {
                    hits[t].fetch_add(1, Ordering::Relaxed);
                });
                assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
            }
        }
    }

    #[test]
    fn shared_between_threads() {
        let team = Arc::new(Team::new(2).unwrap());
        let handles: Vec<_> = (0..3)
            .map(|_| {
                let t = team.clone();
                std::thread::spawn(move || {
                    for _ in 0..300 {
                        let sum = AtomicUsize::new(0);
                        t.run(5, &|i| {
                            sum.fetch_add(i, Ordering::Relaxed);
                        });
                        assert_eq!(sum.load(Ordering::Relaxed), 10);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    }
}
