//! Group commit for webhook intake: deliveries that arrive while a transaction is being
//! written wait for the next one and share it, so a burst of concurrent deliveries costs a
//! few commits (a few fsyncs, a few takes of SQLite's one write lock), not one each. A
//! delivery is still answered only after the transaction holding its events committed:
//! what is acknowledged is stored.
//!
//! One writer task per store, started on first use. A batch that fails is written again
//! one delivery per transaction (for at most `ALONE_RETRIES`), so one bad delivery fails
//! alone. If the writer is gone (its runtime shut down), each delivery writes on its own.

use std::sync::OnceLock;

use tokio::sync::{mpsc, oneshot};

use super::webhooks::Accepting;
use super::{Store, StoreError};

/// The most deliveries one transaction takes: enough for a burst, few enough that the
/// first of them is not kept waiting behind a long statement list.
const MAX_BATCH: usize = 64;

/// How long a failed batch's deliveries are retried one by one.
const ALONE_RETRIES: std::time::Duration = std::time::Duration::from_secs(10);

type Reply = oneshot::Sender<Result<Vec<usize>, StoreError>>;

#[derive(Default)]
pub(super) struct GroupCommit {
    writer: OnceLock<mpsc::UnboundedSender<(Accepting, Reply)>>,
}

impl GroupCommit {
    /// Writes `delivery` in the next shared transaction; its per-account counts of new
    /// events once that committed.
    pub(super) async fn accept(
        &self,
        store: &Store,
        delivery: Accepting,
    ) -> Result<Vec<usize>, StoreError> {
        // The writer's own store has no writer: the task does not keep itself alive.
        let writer = self.writer.get_or_init(|| spawn(store.without_writer()));
        let (tx, rx) = oneshot::channel();
        let delivery = match writer.send((delivery, tx)) {
            Ok(()) => match rx.await {
                Ok(result) => return result,
                // The writer was dropped mid-batch (shutdown): nothing says whether it
                // committed; writing again is safe, the inbox deduplicates.
                Err(_) => {
                    return Err(StoreError::Database {
                        operation: "store a webhook delivery",
                        detail: "the intake writer stopped; the vendor will deliver again".into(),
                    });
                }
            },
            Err(mpsc::error::SendError((delivery, _))) => delivery,
        };
        only_one(store.accept_together(std::slice::from_ref(&delivery)).await)
    }
}

fn spawn(store: Store) -> mpsc::UnboundedSender<(Accepting, Reply)> {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Accepting, Reply)>();
    tokio::spawn(async move {
        while let Some(head) = rx.recv().await {
            let mut batch = vec![head];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            // A delivery whose request is gone (the vendor hung up) is not written: nobody
            // acknowledged it, and the vendor delivers it again.
            batch.retain(|(_, reply)| !reply.is_closed());
            if batch.is_empty() {
                continue;
            }
            let (deliveries, replies): (Vec<Accepting>, Vec<Reply>) = batch.into_iter().unzip();
            match store.accept_together(&deliveries).await {
                Ok(counts) => {
                    for (reply, counts) in replies.into_iter().zip(counts) {
                        let _ = reply.send(Ok(counts));
                    }
                }
                Err(e) if replies.len() == 1 => {
                    if let Some(reply) = replies.into_iter().next() {
                        let _ = reply.send(Err(e));
                    }
                }
                Err(_) => {
                    // One at a time, within a bound: when the database itself is down every
                    // retry would wait its whole timeout, and the deliveries behind this
                    // batch with it. Past the bound the rest are refused (the vendor
                    // delivers them again).
                    let until = tokio::time::Instant::now() + ALONE_RETRIES;
                    for (reply, delivery) in replies.into_iter().zip(deliveries.iter()) {
                        let alone = if tokio::time::Instant::now() < until {
                            only_one(store.accept_together(std::slice::from_ref(delivery)).await)
                        } else {
                            Err(StoreError::Database {
                                operation: "store a webhook delivery",
                                detail: "the database did not take the delivery in time".into(),
                            })
                        };
                        let _ = reply.send(alone);
                    }
                }
            }
        }
    });
    tx
}

/// The counts of a one-delivery write.
fn only_one(all: Result<Vec<Vec<usize>>, StoreError>) -> Result<Vec<usize>, StoreError> {
    all.map(|all| all.into_iter().next().unwrap_or_default())
}
