//! The CPU time of the calling thread: what an evaluation costs, whatever else the machine
//! runs. Wall-clock time would charge a tenant for the other tenants' work on a busy host.

use std::time::Duration;

use rustix::time::{ClockId, clock_gettime};

/// Started on a thread, read on the same thread.
#[derive(Debug, Clone, Copy)]
pub struct CpuTimer {
    started: Duration,
}

impl CpuTimer {
    pub fn start() -> CpuTimer {
        CpuTimer { started: now() }
    }

    /// CPU time the current thread used since [`CpuTimer::start`] (zero if read on another
    /// thread that has used less).
    pub fn elapsed(&self) -> Duration {
        now().saturating_sub(self.started)
    }
}

fn now() -> Duration {
    let t = clock_gettime(ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_work_on_this_thread_and_not_sleep() {
        let timer = CpuTimer::start();
        let mut x: u64 = 1;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
        }
        std::hint::black_box(x);
        let busy = timer.elapsed();
        assert!(busy > Duration::ZERO, "a busy loop took no CPU time");
        // Another thread's work is not this thread's.
        let timer = CpuTimer::start();
        let other = std::thread::spawn(move || {
            let t = CpuTimer::start();
            let mut y: u64 = 1;
            for i in 0..5_000_000u64 {
                y = y.wrapping_mul(6364136223846793005).wrapping_add(i);
            }
            std::hint::black_box(y);
            t.elapsed()
        });
        let theirs = other.join().unwrap_or_default();
        assert!(
            timer.elapsed() < theirs,
            "waiting for another thread was counted as this thread's CPU time"
        );
    }
}
