//! The tail of stored unified events, fanned out to this replica's subscriptions.
//!
//! Every replica tails the same table, so an event taken in by one replica reaches a
//! subscriber connected to another. It is woken by this replica's writes, by the others'
//! through PostgreSQL `LISTEN`/`NOTIFY`, and by a short poll (several processes on one
//! SQLite file; a notification lost while the listener reconnects).
//!
//! Sequence numbers are handed out when a transaction inserts, not when it commits, so a
//! later number can become visible first. The tail therefore holds its position at a gap
//! for a few seconds (the earlier transaction is still committing) and publishes what lies
//! past it only once, so no event is skipped and none is sent twice.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::services::{Services, SharedServices};
use crate::store::{EventQuery, StoreError};

/// How often the tail looks without being woken.
const POLL: Duration = Duration::from_secs(1);
/// How long a gap in the sequence is waited for before it is taken as a rolled-back insert.
const GAP_WAIT: Duration = Duration::from_secs(10);
const PAGE: u64 = 500;

/// Tells the other replicas that events were written (PostgreSQL only; a no-op on SQLite).
pub async fn announce(services: &Services) {
    if let Err(e) = services.store.notify_events().await {
        tracing::debug!(error = %e, "could not notify other replicas of new events");
    }
}

struct Tail {
    /// Every event up to here was published.
    contiguous: i64,
    /// Published events past `contiguous` (beyond a gap).
    ahead: BTreeSet<i64>,
    /// Since when `contiguous + 1` has been missing.
    gap_since: Option<Instant>,
}

impl Tail {
    /// Publishes what is new; returns whether it should look again at once.
    async fn step(&mut self, services: &Services) -> Result<bool, StoreError> {
        let events = services
            .store
            .list_unified_events(&EventQuery {
                after_seq: Some(self.contiguous),
                limit: PAGE,
                ..EventQuery::default()
            })
            .await?;
        let full = events.len() as u64 == PAGE;
        for e in events {
            if self.ahead.contains(&e.seq) {
                continue;
            }
            self.ahead.insert(e.seq);
            // No receiver is fine: nobody is subscribed on this replica.
            let _ = services.events.feed.send(Arc::new(e));
        }
        self.advance();
        Ok(full)
    }

    fn advance(&mut self) {
        loop {
            if self.ahead.remove(&(self.contiguous + 1)) {
                self.contiguous += 1;
                self.gap_since = None;
                continue;
            }
            match self.ahead.first() {
                None => {
                    self.gap_since = None;
                    return;
                }
                Some(&next) => {
                    let since = *self.gap_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= GAP_WAIT {
                        // A rolled-back insert: skip the hole.
                        self.contiguous = next - 1;
                        self.gap_since = None;
                        continue;
                    }
                    return;
                }
            }
        }
    }
}

/// Runs until `stop`.
pub async fn run(services: SharedServices, mut stop: tokio::sync::watch::Receiver<bool>) {
    let start = loop {
        match services.store.last_event_seq().await {
            Ok(seq) => break seq,
            Err(e) => {
                tracing::warn!(error = %e, "event feed cannot read the last event; will retry");
                tokio::select! {
                    _ = tokio::time::sleep(POLL) => {}
                    _ = stop.changed() => return,
                }
            }
        }
    };
    let mut tail = Tail {
        contiguous: start,
        ahead: BTreeSet::new(),
        gap_since: None,
    };
    let mut listener = match services.store.listen_events().await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for other replicas' events; polling instead");
            None
        }
    };
    loop {
        match tail.step(&services).await {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "event feed cannot read events; will retry"),
        }
        let heard = async {
            match listener.as_mut() {
                Some(l) => l.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = services.events.written.notified() => {}
            r = heard => {
                if let Err(e) = r {
                    tracing::warn!(error = %e, "event listener failed; polling until it reconnects");
                    listener = None;
                }
            }
            _ = tokio::time::sleep(POLL) => {
                if listener.is_none() && services.store.backend() == crate::store::Backend::Postgres {
                    listener = services.store.listen_events().await.ok().flatten();
                }
            }
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gap_holds_the_position_until_it_fills() {
        let mut t = Tail {
            contiguous: 5,
            ahead: BTreeSet::new(),
            gap_since: None,
        };
        t.ahead.extend([6, 8]);
        t.advance();
        assert_eq!(t.contiguous, 6);
        assert!(t.gap_since.is_some());
        t.ahead.insert(7);
        t.advance();
        assert_eq!(t.contiguous, 8);
        assert!(t.ahead.is_empty() && t.gap_since.is_none());
    }

    #[test]
    fn a_gap_that_never_fills_is_skipped_after_the_wait() {
        let mut t = Tail {
            contiguous: 1,
            ahead: BTreeSet::from([3]),
            gap_since: None,
        };
        t.advance();
        assert_eq!(t.contiguous, 1);
        t.gap_since = Some(Instant::now() - GAP_WAIT);
        t.advance();
        assert_eq!(t.contiguous, 3);
    }
}
