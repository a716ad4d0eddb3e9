//! Related records, loaded once per request: a link field (`Contact.company`) reads from
//! here, and list resolvers fill it with one batch read per list level before their
//! children resolve, so `contacts(first: 100) { edges { node { company { name } } } }` is
//! two upstream calls, not 101. Keys are (linked account, resource, remote id), so nothing
//! crosses accounts; the loader lives in the request, so nothing crosses requests.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_graphql::Lookahead;
use futures_util::StreamExt;

use super::resources::RecordNode;
use crate::engine::{AccountHandle, Engine, EngineError};
use crate::schema::UnifiedModel;

/// Parallel single reads for providers without a batch endpoint: bounded, so one list of
/// 100 does not open 100 connections to a vendor.
const PARALLEL_GETS: usize = 8;
/// How deep list-level prefetching follows nested links.
const MAX_PREFETCH_DEPTH: usize = 4;

type Key = (String, Arc<str>, String);
type Loaded = Result<Option<Arc<RecordNode>>, Arc<EngineError>>;

#[derive(Default)]
pub struct RecordLoader {
    cache: Mutex<HashMap<Key, Loaded>>,
    /// Single reads under way: fields asking for the same record at once share one.
    inflight: Mutex<HashMap<Key, Arc<tokio::sync::OnceCell<()>>>>,
}

impl std::fmt::Debug for RecordLoader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.cache.lock().map(|c| c.len()).unwrap_or(0);
        write!(f, "RecordLoader({n} cached)")
    }
}

fn key(account: &AccountHandle, resource: &Arc<str>, id: &str) -> Key {
    (account.id.clone(), resource.clone(), id.to_string())
}

impl RecordLoader {
    fn cached(&self, k: &Key) -> Option<Loaded> {
        self.cache.lock().ok().and_then(|c| c.get(k).cloned())
    }

    fn store(&self, entries: impl IntoIterator<Item = (Key, Loaded)>) {
        if let Ok(mut c) = self.cache.lock() {
            c.extend(entries);
        }
    }

    /// Fetches every id not yet known, in as few upstream calls as the provider allows.
    /// Failures are remembered per id, so the fields that need them report the error
    /// instead of asking the vendor again.
    pub async fn prefetch(
        &self,
        engine: &Engine,
        account: &Arc<AccountHandle>,
        resource: &Arc<str>,
        ids: Vec<String>,
    ) -> Vec<Arc<RecordNode>> {
        let mut seen = HashSet::new();
        let missing: Vec<String> = ids
            .into_iter()
            .filter(|id| {
                seen.insert(id.clone()) && self.cached(&key(account, resource, id)).is_none()
            })
            .collect();
        if missing.is_empty() {
            return Vec::new();
        }
        let node = |record| {
            Arc::new(RecordNode {
                account: account.clone(),
                resource: resource.clone(),
                record,
            })
        };
        let has_batch = account
            .provider
            .resources
            .get(&**resource)
            .is_some_and(|r| r.batch_get.is_some());
        let mut found: HashMap<String, Arc<RecordNode>> = HashMap::new();
        let mut failure: Option<Arc<EngineError>> = None;
        if has_batch {
            match engine.batch_get(account, resource, &missing).await {
                Ok(records) => {
                    found.extend(records.into_iter().map(|r| (r.remote_id.clone(), node(r))))
                }
                Err(e) => failure = Some(Arc::new(e)),
            }
        } else {
            let results: Vec<(String, Result<Option<crate::engine::Record>, EngineError>)> =
                futures_util::stream::iter(missing.clone())
                    .map(|id| async move {
                        let r = engine.get(account, resource, &id).await;
                        (id, r)
                    })
                    .buffer_unordered(PARALLEL_GETS)
                    .collect()
                    .await;
            let mut errors = Vec::new();
            for (id, r) in results {
                match r {
                    Ok(Some(rec)) => {
                        found.insert(id, node(rec));
                    }
                    Ok(None) => {}
                    Err(e) => errors.push((id, Arc::new(e))),
                }
            }
            self.store(
                errors
                    .into_iter()
                    .map(|(id, e)| (key(account, resource, &id), Err(e))),
            );
        }
        let fresh: Vec<Arc<RecordNode>> = found.values().cloned().collect();
        self.store(missing.iter().map(|id| {
            let value = match (&failure, found.remove(id)) {
                (_, Some(n)) => Ok(Some(n)),
                (Some(e), None) => Err(e.clone()),
                (None, None) => Ok(None),
            };
            (key(account, resource, id), value)
        }));
        fresh
    }

    /// One related record: from the cache, or fetched now.
    pub async fn load(
        &self,
        engine: &Engine,
        account: &Arc<AccountHandle>,
        resource: &Arc<str>,
        id: &str,
    ) -> Loaded {
        let k = key(account, resource, id);
        if let Some(v) = self.cached(&k) {
            return v;
        }
        let once = self
            .inflight
            .lock()
            .map(|mut m| m.entry(k.clone()).or_default().clone())
            .unwrap_or_default();
        once.get_or_init(|| async {
            self.prefetch(engine, account, resource, vec![id.to_string()])
                .await;
        })
        .await;
        self.cached(&k).unwrap_or(Ok(None))
    }
}

/// The remote id a record's mapping put in a link's id field.
pub fn link_ids(node: &RecordNode, id_field: &str) -> Vec<String> {
    ids_in(
        node.record
            .mapped
            .as_ref()
            .ok()
            .and_then(|m| m.get(id_field)),
    )
}

/// The remote id(s) a mapped value holds: one id, or a list of them.
pub fn ids_in(value: Option<&serde_json::Value>) -> Vec<String> {
    let one = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    match value {
        Some(serde_json::Value::Array(items)) => items.iter().filter_map(one).collect(),
        Some(v) => one(v).into_iter().collect(),
        None => Vec::new(),
    }
}

/// What prefetching needs besides the loader itself.
pub struct PrefetchScope<'a> {
    pub engine: &'a Engine,
    pub model: &'a UnifiedModel,
    pub account: &'a Arc<AccountHandle>,
}

impl RecordLoader {
    /// Before a list's children resolve: for every link field the query selects under the
    /// list's nodes, read all the related records in one go, then do the same one level down.
    pub async fn prefetch_links(
        &self,
        scope: &PrefetchScope<'_>,
        resource: &str,
        nodes: Vec<Arc<RecordNode>>,
        selection: Lookahead<'_>,
        depth: usize,
    ) {
        if depth >= MAX_PREFETCH_DEPTH || nodes.is_empty() {
            return;
        }
        let Some(def) = scope.model.resource(resource) else {
            return;
        };
        for field in &def.fields {
            let Some(link) = &field.link else { continue };
            let below = selection.field(&field.name);
            if !below.exists() {
                continue;
            }
            let ids: Vec<String> = nodes
                .iter()
                .flat_map(|n| link_ids(n, &link.field))
                .collect();
            let related: Arc<str> = link.resource.as_str().into();
            let fresh = self
                .prefetch(scope.engine, scope.account, &related, ids)
                .await;
            Box::pin(self.prefetch_links(scope, &link.resource, fresh, below, depth + 1)).await;
        }
    }
}
