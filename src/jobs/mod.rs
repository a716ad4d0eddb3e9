//! The gateway's background work: the proactive token refresher, the override and budget
//! poll, the request-log writer. Each runs under the [`Supervisor`], which restarts a task
//! that panics or ends on its own (with backoff) and says so in `/readyz` and `/metrics`, so
//! a task's death is never silent (a panicking refresher once stopped every refresh of its
//! replica without a word).

mod supervisor;

pub use supervisor::{Supervisor, TaskReport};
