//! Reads that may be up to a second old, for the hot paths that would otherwise ask the
//! database the same question on every request (webhook intake asks for the provider's
//! apps, the account a routing key names and that account, on every delivery; every
//! GraphQL request asks for its API key and its linked account).
//!
//! A write through this store forgets what it changes at once, so on one replica a cached
//! read is never older than the last local write. Another replica's write is seen once the
//! entry expires: at most [`TTL`] later. That bound is why this is a plain map rather than
//! a caching crate: entries are few (providers, accounts that receive webhooks), there is
//! no size-aware eviction to tune, and what matters (a generation counter so that a read
//! racing a write cannot store what the write replaced) is a few lines here.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How old a cached read may be.
pub(super) const TTL: Duration = Duration::from_secs(1);

/// Entries kept before expired ones are swept (and, if none had expired, all dropped):
/// a flood of deliveries naming unknown keys cannot grow the map without bound.
const CAPACITY: usize = 10_000;

pub(super) struct Recent<K, V> {
    entries: Mutex<HashMap<K, (Instant, V)>>,
    /// Bumped by every forget: a read that started before it does not store its answer.
    generation: AtomicU64,
}

impl<K, V> Default for Recent<K, V> {
    fn default() -> Self {
        Recent {
            entries: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
        }
    }
}

impl<K: Eq + Hash, V: Clone> Recent<K, V> {
    /// The cached value, if younger than [`TTL`].
    fn get(&self, key: &K) -> Option<V> {
        let entries = self.entries.lock().ok()?;
        let (at, value) = entries.get(key)?;
        (at.elapsed() < TTL).then(|| value.clone())
    }

    /// The cached value of `key`, else what `read` answers (then cached). `read` is a
    /// future, so it queries nothing until it is awaited here, after the generation was
    /// taken: a write that lands meanwhile keeps its answer out of the cache.
    pub(super) async fn read_through<E>(
        &self,
        key: K,
        read: impl Future<Output = Result<V, E>>,
    ) -> Result<V, E> {
        if let Some(value) = self.get(&key) {
            return Ok(value);
        }
        let generation = self.generation();
        let value = read.await?;
        self.put(generation, key, value.clone());
        Ok(value)
    }

    /// As [`Self::read_through`], for a lookup that may find nothing: only what was found
    /// is kept, so a row created on another replica (a new API key) is usable at once
    /// rather than refused for a second.
    pub(super) async fn read_through_found<E>(
        &self,
        key: K,
        read: impl Future<Output = Result<Option<V>, E>>,
    ) -> Result<Option<V>, E> {
        if let Some(value) = self.get(&key) {
            return Ok(Some(value));
        }
        let generation = self.generation();
        let found = read.await?;
        if let Some(value) = &found {
            self.put(generation, key, value.clone());
        }
        Ok(found)
    }

    /// Taken before reading the database; [`Self::put`] stores the answer only if no
    /// write forgot anything meanwhile.
    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn put(&self, read_at_generation: u64, key: K, value: V) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        // Checked under the lock: `forget` bumps the generation under it too.
        if self.generation.load(Ordering::Acquire) != read_at_generation {
            return;
        }
        if entries.len() >= CAPACITY {
            entries.retain(|_, (at, _)| at.elapsed() < TTL);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(key, (Instant::now(), value));
    }

    /// Forgets everything: after a write whose effect on the keys is not known here.
    pub(super) fn forget_all(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            self.generation.fetch_add(1, Ordering::AcqRel);
            entries.clear();
        }
    }

    pub(super) fn forget(&self, key: &K) {
        if let Ok(mut entries) = self.entries.lock() {
            self.generation.fetch_add(1, Ordering::AcqRel);
            entries.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_that_raced_a_write_is_not_kept() {
        let recent: Recent<&str, u32> = Recent::default();
        let before = recent.generation();
        recent.forget(&"a");
        recent.put(before, "a", 1);
        assert_eq!(recent.get(&"a"), None, "stored what a write replaced");
        recent.put(recent.generation(), "a", 2);
        assert_eq!(recent.get(&"a"), Some(2));
        recent.forget_all();
        assert_eq!(recent.get(&"a"), None);
    }

    #[test]
    fn the_map_stays_bounded() {
        let recent: Recent<usize, usize> = Recent::default();
        for i in 0..CAPACITY * 3 {
            recent.put(recent.generation(), i, i);
        }
        assert!(recent.entries.lock().map(|e| e.len()).unwrap_or(0) <= CAPACITY);
        assert_eq!(recent.get(&(CAPACITY * 3 - 1)), Some(CAPACITY * 3 - 1));
    }
}
