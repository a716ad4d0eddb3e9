//! How many calls to its vendor one linked account may have in flight at once, across
//! every request and job of this replica. A tenant that fires a thousand concurrent reads
//! at one account waits its turn instead of opening a thousand connections to a vendor
//! whose quota the customer shares with other integrations; other accounts are not held
//! up by it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Default ceiling of concurrent calls per account (`TESSERA_MAX_CONCURRENT_CALLS_PER_ACCOUNT`).
pub const DEFAULT_PER_ACCOUNT: usize = 8;

pub struct AccountGates {
    per_account: usize,
    gates: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl AccountGates {
    pub fn new(per_account: usize) -> AccountGates {
        AccountGates {
            per_account: per_account.max(1),
            gates: Mutex::new(HashMap::new()),
        }
    }

    /// Waits for a free slot of `account`'s; the slot is held until the permit drops.
    /// `None` if the gate cannot be had (a poisoned lock): the call goes ahead ungated
    /// rather than failing.
    pub async fn enter(&self, account: &str) -> Option<OwnedSemaphorePermit> {
        let gate = {
            let mut gates = self.gates.lock().ok()?;
            // Gates nobody holds or waits for are forgotten now and then, so the map
            // follows the accounts in use, not every account ever called.
            if gates.len() > 4096 {
                let full = self.per_account;
                gates.retain(|_, g| Arc::strong_count(g) > 1 || g.available_permits() < full);
            }
            gates
                .entry(account.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_account)))
                .clone()
        };
        gate.acquire_owned().await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_account_has_at_most_its_ceiling_in_flight_and_others_are_not_held() {
        let gates = AccountGates::new(2);
        let a1 = gates.enter("a").await;
        let a2 = gates.enter("a").await;
        assert!(a1.is_some() && a2.is_some());
        let third = tokio::time::timeout(std::time::Duration::from_millis(20), gates.enter("a"));
        assert!(third.await.is_err(), "a third call of `a` waits");
        assert!(
            gates.enter("b").await.is_some(),
            "`b` is not held up by `a`"
        );
        drop(a1);
        assert!(gates.enter("a").await.is_some(), "a freed slot is taken");
    }
}
