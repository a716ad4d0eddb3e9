//! The generic executor: given a linked account and a resource operation, it builds the
//! upstream requests from the provider model, pages, classifies failures and maps records.
//!
//! It never imports `async_graphql` or `crate::graphql`: the engine speaks records and
//! pages, and the GraphQL layer decides how they look to a caller.

mod breaker;
mod budget;
mod call;
mod changes;
mod coerce;
mod cursor;
mod error;
mod gates;
mod mapper;
pub mod observe;
pub mod pagination;
pub mod ratelimit;
mod refusal;
mod resolver;
mod spend;
mod upstream;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use url::Url;

use reqwest::header::{HeaderMap, HeaderValue};

use crate::config::{ListOperation, Placement, ProviderModel, ResourceModel, WriteOperation};
use crate::mapping::{MappingError, Vars};
use crate::secret::Secret;

pub use breaker::BreakerPolicy;
pub use budget::WindowBudget;
pub use call::RetryPolicy;
pub use changes::{Change, ChangePage};
pub use cursor::{CursorCodec, Position};
pub use error::{EngineError, NetworkFailure};
pub use observe::{CallObserver, CallRecord, ListingOutcome, ListingRecord};
pub use pagination::PageTarget;
pub use ratelimit::RateLimit;
pub use refusal::{Refusal, TokenRefusals};
pub use spend::RequestSpend;

/// The largest `first` a caller may ask for in one request.
pub const MAX_FIRST: usize = 1000;
/// Upstream pages one request may walk before it is stopped: protects the vendor's quota
/// and the caller's latency from a listing that never ends.
pub const MAX_PAGES_PER_REQUEST: usize = 50;

/// What the engine needs of a linked account: resolved once per request by the caller.
#[derive(Debug, Clone)]
pub struct AccountHandle {
    pub id: String,
    pub provider: Arc<ProviderModel>,
    /// The provider's base URL, or the account's `settings.baseUrl` (already checked).
    pub base_url: Url,
    /// The access token or API key placed on requests as the provider's auth says.
    pub token: Secret,
    /// The account's settings (for auth header templates).
    pub settings: Value,
    /// Where the rate-limit figures of every upstream reply are noted.
    pub spend: Arc<RequestSpend>,
}

/// One upstream record: the raw vendor JSON and its unified mapping.
#[derive(Debug)]
pub struct Record {
    pub remote_id: String,
    pub raw: Value,
    /// The mapped fields; a mapping failure stays with its record, so one bad record does
    /// not fail the page.
    pub mapped: Result<Map<String, Value>, MappingError>,
    /// Values the mapping had to drop (a custom field that does not fit its declared type).
    pub warnings: Vec<String>,
}

#[derive(Debug)]
pub struct Edge {
    pub cursor: String,
    pub record: Record,
}

#[derive(Debug)]
pub struct ListPage {
    pub edges: Vec<Edge>,
    pub has_next_page: bool,
}

#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// One attempt's time limit.
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    /// One call's time limit, retries included.
    pub deadline: Duration,
    pub retry: RetryPolicy,
    pub breaker: BreakerPolicy,
    /// Upstream calls one caller request may make, retries included.
    pub max_calls_per_request: u64,
    /// Calls one linked account may have in flight at once (across requests).
    pub max_concurrent_per_account: usize,
    /// Threads that evaluate tenant-written mappings (`TESSERA_MAPPING_THREADS`).
    pub mapping_threads: usize,
    /// CPU one request may spend on mappings (`TESSERA_MAPPING_BUDGET_MS`).
    pub mapping_budget: crate::mapping::MappingBudget,
}

/// Default ceiling of one request's upstream calls (`TESSERA_MAX_UPSTREAM_CALLS`): the cost
/// estimate's default limit (100) and its retries.
pub const DEFAULT_MAX_CALLS_PER_REQUEST: u64 = 400;

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            deadline: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            breaker: BreakerPolicy::default(),
            max_calls_per_request: DEFAULT_MAX_CALLS_PER_REQUEST,
            max_concurrent_per_account: gates::DEFAULT_PER_ACCOUNT,
            // As many as the machine has cores: mapping is CPU work, more threads than cores
            // would only take turns.
            mapping_threads: std::thread::available_parallelism().map_or(2, usize::from),
            mapping_budget: crate::mapping::MappingBudget::DEFAULT,
        }
    }
}

pub struct Engine {
    http: reqwest::Client,
    /// The non-public upstreams that may be called; checked before each request leaves and
    /// on the addresses its host resolves to.
    upstreams: Arc<crate::upstreams::AllowList>,
    cursors: CursorCodec,
    options: EngineOptions,
    breakers: breaker::Breakers,
    budgets: budget::Budgets,
    gates: gates::AccountGates,
    mapper: mapper::Mapper,
    observer: Option<Arc<dyn CallObserver>>,
    refusals: Option<Arc<dyn TokenRefusals>>,
}

impl Engine {
    /// An engine that calls the public Internet and the non-public upstreams `upstreams`
    /// names (redirects are never followed).
    pub fn new(
        cursor_key: [u8; 32],
        options: EngineOptions,
        upstreams: Arc<crate::upstreams::AllowList>,
    ) -> Result<Engine, reqwest::Error> {
        let http = crate::upstreams::client(&upstreams)
            .timeout(options.request_timeout)
            .connect_timeout(options.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .user_agent(concat!("tessera/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Engine {
            http,
            upstreams,
            cursors: CursorCodec::new(cursor_key),
            breakers: breaker::Breakers::new(options.breaker.clone()),
            budgets: budget::Budgets::default(),
            gates: gates::AccountGates::new(options.max_concurrent_per_account),
            mapper: mapper::Mapper::new(options.mapping_threads, options.mapping_budget),
            options,
            observer: None,
            refusals: None,
        })
    }

    /// Runs `work`, which evaluates a tenant's expressions (an override's validation on the
    /// samples), on the mapping pool instead of the caller's async worker.
    pub async fn off_the_workers<T, F>(&self, work: F) -> Result<T, EngineError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.mapper.offload(work).await
    }

    /// Asks `refusals` what to do when a vendor refuses a token (see `refusal.rs`).
    pub fn with_refusals(mut self, refusals: Arc<dyn TokenRefusals>) -> Engine {
        self.refusals = Some(refusals);
        self
    }

    /// Sends every upstream call and breaker change to `observer` (request log, metrics).
    pub fn with_observer(mut self, observer: Arc<dyn CallObserver>) -> Engine {
        self.observer = Some(observer);
        self
    }

    /// A window another replica saw used up: requests of `account` fail fast until then.
    pub fn import_exhausted(
        &self,
        account: &str,
        window: &str,
        limit: Option<u64>,
        reset_in: Duration,
    ) {
        self.budgets.import(account, window, limit, reset_in);
    }

    /// What is known of a linked account's rate-limit windows.
    pub fn budget_of(&self, account_id: &str) -> Vec<WindowBudget> {
        self.budgets.of(account_id)
    }

    /// Open circuits of a provider's accounts, now.
    pub fn open_circuits(&self, provider: &str) -> usize {
        self.breakers.open_count(&format!("{provider}/"))
    }

    fn resource<'a>(
        account: &'a AccountHandle,
        resource: &str,
        operation: &'static str,
    ) -> Result<&'a ResourceModel, EngineError> {
        account
            .provider
            .resources
            .get(resource)
            .ok_or_else(|| EngineError::Unsupported {
                provider: account.provider.name.clone(),
                resource: resource.to_string(),
                operation,
            })
    }

    /// Lists `first` records after the Relay cursor `after`, walking as many upstream pages
    /// as needed (never more than [`MAX_PAGES_PER_REQUEST`]).
    /// As [`Engine::list`], unseen by the observer: a listing made with an override nobody
    /// stored yet (`previewOverride`) is no evidence of how the account's listings look.
    pub async fn list_unobserved(
        &self,
        account: &AccountHandle,
        resource: &str,
        first: usize,
    ) -> Result<ListPage, EngineError> {
        let mut shape = None;
        self.list_pages(account, resource, first, None, &Map::new(), &mut shape)
            .await
    }

    pub async fn list(
        &self,
        account: &AccountHandle,
        resource: &str,
        first: usize,
        after: Option<&str>,
        filter: &Map<String, Value>,
    ) -> Result<ListPage, EngineError> {
        let mut shape = None;
        let result = self
            .list_pages(account, resource, first, after, filter, &mut shape)
            .await;
        if let Some(o) = &self.observer {
            let outcome = match &result {
                Ok(page) => ListingOutcome::Records {
                    records: page.edges.len(),
                    complete: !page.has_next_page,
                },
                Err(EngineError::NotFound { .. }) => ListingOutcome::NotFound,
                // Refused before any call (a bad page size, an unknown filter): nothing
                // was learned about the vendor.
                Err(e) if !e.reached_vendor() => return result,
                Err(_) => ListingOutcome::Failed,
            };
            o.listing(&ListingRecord {
                account_id: account.id.clone(),
                provider: account.provider.name.clone(),
                resource: resource.to_owned(),
                outcome,
                counted: after.is_none() && filter.is_empty(),
                shape,
            });
        }
        result
    }

    async fn list_pages(
        &self,
        account: &AccountHandle,
        resource: &str,
        first: usize,
        after: Option<&str>,
        filter: &Map<String, Value>,
        shape: &mut Option<String>,
    ) -> Result<ListPage, EngineError> {
        if first > MAX_FIRST {
            return Err(EngineError::BadPageSize { max: MAX_FIRST });
        }
        let res = Self::resource(account, resource, "list")?;
        // A filtered listing goes to the vendor's search endpoint when the file has one.
        let (op, searched) = match (&res.search, &res.list) {
            (Some(search), _) if !filter.is_empty() => (search, true),
            (_, Some(list)) => (list, false),
            _ => return Err(unsupported(account, resource, "list")),
        };
        // A filter the provider cannot translate is refused, never silently dropped.
        if let Some(name) = filter.keys().find(|k| !op.filters.contains(k)) {
            return Err(EngineError::UnsupportedFilter {
                provider: account.provider.name.clone(),
                filter: name.clone(),
            });
        }
        let filter_digest = (!filter.is_empty()).then(|| digest(&Value::Object(filter.clone())));
        let filter_query = self.filter_params(account, op, filter).await?;
        let filter_body = self.filter_body(account, op, filter).await?;
        let pagination = op
            .pagination
            .as_ref()
            .unwrap_or(&account.provider.pagination);
        let strategy = pagination::paginator(pagination);
        let (mut state, mut skip, page_size) = match after {
            Some(c) => {
                let p = self
                    .cursors
                    .decode(c, &account.id, resource, filter_digest.as_deref())?;
                (p.state, p.offset, p.page_size)
            }
            None => (
                None,
                0,
                first.clamp(pagination.min_page_size(), pagination.max_page_size()),
            ),
        };
        let mut edges = Vec::new();
        if first == 0 {
            return Ok(ListPage {
                edges,
                has_next_page: false,
            });
        }
        let mut seen_states: Vec<Option<String>> = vec![state.clone()];
        let mut followed_more = false;
        // A vendor that resets or repeats its cursor under a new name is caught by the ids.
        let mut seen_ids = std::collections::HashSet::new();
        for _ in 0..MAX_PAGES_PER_REQUEST {
            let target = self.page_target(
                account,
                FilteredList {
                    op,
                    filter_query: &filter_query,
                    filter_body: filter_body.as_ref(),
                },
                strategy,
                state.as_deref(),
                page_size,
            )?;
            let mut reply = self.call(account, target, call::CallKind::Read).await?;
            let count = match reply.body.pointer(&op.records_pointer) {
                Some(Value::Array(items)) => items.len(),
                // A 204 "no content" answer (some vendors send it for an empty list).
                None if reply.body.is_null() => 0,
                // `"data": null`: how some vendors' v1 APIs say "no records".
                Some(Value::Null) => 0,
                _ => {
                    return Err(EngineError::Drift {
                        what: format!(
                            "no array of records at `{}` in the list response",
                            op.records_pointer
                        ),
                    });
                }
            };
            if count == 0 && followed_more && strategy.explicit_more() {
                return Err(EngineError::EmptyPage);
            }
            let next = strategy.next_state(&pagination::PageView {
                body: &reply.body,
                headers: &reply.headers,
                state: state.as_deref(),
                page_size,
                records: count,
            });
            // The shape baseline is the list endpoint's: a search endpoint answers in an
            // envelope of its own (a `total`, another cursor), and comparing the two would
            // page someone for drift every time reconciliation polls.
            if after.is_none()
                && !followed_more
                && !searched
                && let Some(o) = &self.observer
            {
                *shape = o.first_page(
                    &account.id,
                    resource,
                    &reply.body,
                    &op.records_pointer,
                    next.as_deref(),
                );
            }
            if next.is_some() && seen_states.contains(&next) {
                return Err(EngineError::PaginationLoop);
            }
            // The records move out of the decoded body: a page is never copied.
            let records = match reply.body.pointer_mut(&op.records_pointer) {
                Some(Value::Array(items)) => std::mem::take(items),
                _ => Vec::new(),
            };
            let position = |state: &Option<String>, offset: usize| {
                self.cursors.encode(&Position {
                    account: account.id.clone(),
                    resource: resource.to_string(),
                    state: state.clone(),
                    offset,
                    page_size,
                    filter: filter_digest.clone(),
                })
            };
            // The records this request still needs from the page, mapped in one batch.
            let taken_before_page = edges.len();
            let wanted = first - taken_before_page;
            let more_on_page = count > skip + wanted;
            let raws: Vec<(usize, Value)> = records
                .into_iter()
                .enumerate()
                .skip(skip)
                .take(wanted)
                .collect();
            for record in self.mapper.map(account, resource, raws).await? {
                let i = skip + edges.len() - taken_before_page;
                let cursor = if i + 1 < count {
                    position(&state, i + 1)
                } else if next.is_some() {
                    position(&next, 0)
                } else {
                    position(&state, count)
                };
                if !seen_ids.insert(record.remote_id.clone()) {
                    return Err(EngineError::DuplicateRecord {
                        id: record.remote_id,
                    });
                }
                edges.push(Edge { cursor, record });
            }
            if more_on_page {
                // Records left on this page: there is more.
                return Ok(ListPage {
                    edges,
                    has_next_page: true,
                });
            }
            match next {
                None => {
                    return Ok(ListPage {
                        edges,
                        has_next_page: false,
                    });
                }
                Some(_) if edges.len() == first => {
                    return Ok(ListPage {
                        edges,
                        has_next_page: true,
                    });
                }
                Some(n) => {
                    seen_states.push(Some(n.clone()));
                    state = Some(n);
                    skip = 0;
                    followed_more = true;
                }
            }
        }
        Err(EngineError::PageCap {
            pages: MAX_PAGES_PER_REQUEST,
        })
    }

    fn page_target(
        &self,
        account: &AccountHandle,
        FilteredList {
            op,
            filter_query,
            filter_body,
        }: FilteredList<'_>,
        strategy: &dyn pagination::Paginator,
        state: Option<&str>,
        page_size: usize,
    ) -> Result<upstream::Target, EngineError> {
        let mut headers = HeaderMap::new();
        for (name, template) in &op.headers {
            let value = template
                .render(|_| Some(page_size.to_string()))
                .map_err(|m| EngineError::UpstreamUrl {
                    reason: format!("header placeholder `{m}`"),
                })?;
            let value = HeaderValue::from_str(&value).map_err(|_| EngineError::UpstreamUrl {
                reason: format!("header `{name}` is not valid"),
            })?;
            headers.insert(name.clone(), value);
        }
        match strategy.target(state, page_size) {
            PageTarget::Url(next) => Ok(upstream::Target {
                method: op.method.clone(),
                url: upstream::resolve_next(&account.base_url, &next)?,
                headers,
                body: list_body(op, filter_body),
            }),
            PageTarget::Params(params) => {
                let mut query: Vec<(String, String)> = op
                    .query
                    .iter()
                    .filter(|(k, _)| !filter_query.iter().any(|(f, _)| f == k))
                    .cloned()
                    .collect();
                query.extend(filter_query.iter().cloned());
                let mut body = list_body(op, filter_body);
                match strategy.placement() {
                    Placement::Query => query.extend(
                        params
                            .iter()
                            .map(|(k, v)| (k.clone(), upstream::query_text(v))),
                    ),
                    Placement::JsonBody => {
                        let object = body.get_or_insert_with(|| Value::Object(Map::new()));
                        if let Value::Object(map) = object {
                            map.extend(params);
                        }
                    }
                }
                Ok(upstream::Target {
                    method: op.method.clone(),
                    url: upstream::url_for(
                        &account.base_url,
                        &upstream::render_path(&op.path, &[]),
                        &query,
                    )?,
                    headers,
                    body,
                })
            }
        }
    }

    /// Fetches one record by its remote id; `Ok(None)` when the vendor says it does not exist.
    pub async fn get(
        &self,
        account: &AccountHandle,
        resource: &str,
        remote_id: &str,
    ) -> Result<Option<Record>, EngineError> {
        let res = Self::resource(account, resource, "get")?;
        match self.get_raw(account, res, remote_id).await? {
            Some(raw) => self.map_one(account, &res.name, raw).await.map(Some),
            None => Ok(None),
        }
    }

    /// The raw vendor record, unmapped.
    async fn get_raw(
        &self,
        account: &AccountHandle,
        res: &ResourceModel,
        remote_id: &str,
    ) -> Result<Option<Value>, EngineError> {
        let op = res
            .get
            .as_ref()
            .ok_or_else(|| unsupported(account, &res.name, "get"))?;
        let target = upstream::Target {
            method: op.method.clone(),
            url: upstream::url_for(
                &account.base_url,
                &upstream::render_path(&op.path, &[("id", remote_id)]),
                &op.query,
            )?,
            headers: HeaderMap::new(),
            body: None,
        };
        let reply = match self.call(account, target, call::CallKind::Read).await {
            Ok(reply) => reply,
            Err(EngineError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(match reply.body.pointer(&op.record_pointer) {
            Some(Value::Null) | None => None,
            Some(v) => Some(v.clone()),
        })
    }

    /// Fetches records by remote id, in as few requests as the provider's `batch_get`
    /// allows. Ids the vendor does not know are absent from the result (in no given order).
    pub async fn batch_get(
        &self,
        account: &AccountHandle,
        resource: &str,
        ids: &[String],
    ) -> Result<Vec<Record>, EngineError> {
        let res = Self::resource(account, resource, "batch_get")?;
        let op = res
            .batch_get
            .as_ref()
            .ok_or_else(|| unsupported(account, resource, "batch_get"))?;
        let mut out = Vec::new();
        for chunk in ids.chunks(op.max_ids) {
            let mut vars = Map::new();
            vars.insert(
                "ids".into(),
                Value::Array(chunk.iter().map(|i| Value::String(i.clone())).collect()),
            );
            let vars = Vars::from_map(vars);
            let mut query = Vec::new();
            for (name, expr) in &op.query {
                match expr.evaluate(None, &vars).map_err(EngineError::Mapping)? {
                    Some(Value::Array(items)) => query.extend(
                        items
                            .iter()
                            .map(|v| (name.clone(), upstream::query_text(v))),
                    ),
                    Some(v) => query.push((name.clone(), upstream::query_text(&v))),
                    None => {}
                }
            }
            let body = match &op.body {
                Some(expr) => expr.evaluate(None, &vars).map_err(EngineError::Mapping)?,
                None => None,
            };
            let target = upstream::Target {
                method: op.method.clone(),
                url: upstream::url_for(
                    &account.base_url,
                    &upstream::render_path(&op.path, &[]),
                    &query,
                )?,
                headers: HeaderMap::new(),
                body,
            };
            let reply = self.call(account, target, call::CallKind::Read).await?;
            let items = match reply.body.pointer(&op.records_pointer) {
                Some(Value::Array(items)) => items.clone(),
                None if reply.body.is_null() => Vec::new(),
                _ => {
                    return Err(EngineError::Drift {
                        what: format!(
                            "no array of results at `{}` in the batch response",
                            op.records_pointer
                        ),
                    });
                }
            };
            let mut raws = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                match item.pointer(&op.item_pointer) {
                    Some(Value::Null) | None => continue,
                    Some(record) => {
                        // A per-item error entry (no id) means that id does not exist.
                        if mapper::record_id(res, record).is_none() {
                            continue;
                        }
                        raws.push((i, record.clone()));
                    }
                }
            }
            out.extend(self.mapper.map(account, &res.name, raws).await?);
        }
        Ok(out)
    }

    /// Creates a record from the unified `input` and returns it as the vendor stored it.
    pub async fn create(
        &self,
        account: &AccountHandle,
        resource: &str,
        input: &Value,
    ) -> Result<Record, EngineError> {
        let res = Self::resource(account, resource, "create")?;
        let op = res
            .create
            .as_ref()
            .ok_or_else(|| unsupported(account, resource, "create"))?;
        let reply = self.write(account, res, op, None, input).await?;
        self.written_record(account, resource, op, reply, None)
            .await
    }

    /// Updates a record from the unified `input` (fields absent from it are left alone).
    pub async fn update(
        &self,
        account: &AccountHandle,
        resource: &str,
        remote_id: &str,
        input: &Value,
    ) -> Result<Record, EngineError> {
        let res = Self::resource(account, resource, "update")?;
        let op = res
            .update
            .as_ref()
            .ok_or_else(|| unsupported(account, resource, "update"))?;
        let reply = self.write(account, res, op, Some(remote_id), input).await?;
        self.written_record(account, resource, op, reply, Some(remote_id))
            .await
    }

    pub async fn delete(
        &self,
        account: &AccountHandle,
        resource: &str,
        remote_id: &str,
    ) -> Result<(), EngineError> {
        let res = Self::resource(account, resource, "delete")?;
        let op = res
            .delete
            .as_ref()
            .ok_or_else(|| unsupported(account, resource, "delete"))?;
        let target = upstream::Target {
            method: op.method.clone(),
            url: upstream::url_for(
                &account.base_url,
                &upstream::render_path(&op.path, &[("id", remote_id)]),
                &op.query,
            )?,
            headers: HeaderMap::new(),
            body: None,
        };
        self.call(account, target, call::CallKind::Write)
            .await
            .map_err(rejected)?;
        Ok(())
    }

    async fn write(
        &self,
        account: &AccountHandle,
        res: &ResourceModel,
        op: &WriteOperation,
        remote_id: Option<&str>,
        input: &Value,
    ) -> Result<upstream::Reply, EngineError> {
        let mut vars = Map::new();
        if let Some(id) = remote_id {
            vars.insert("id".into(), Value::String(id.to_string()));
            if op.read_before {
                let current =
                    self.get_raw(account, res, id)
                        .await?
                        .ok_or_else(|| EngineError::NotFound {
                            summary: format!(": `{id}` does not exist"),
                        })?;
                vars.insert("current".into(), current);
            }
        }
        let body = self
            .mapper
            .evaluate(account, &op.body, Some(input.clone()), Vars::from_map(vars))
            .await?
            .map_err(refused_or_broken)?
            .unwrap_or(Value::Object(Map::new()));
        let path = match remote_id {
            Some(id) => upstream::render_path(&op.path, &[("id", id)]),
            None => upstream::render_path(&op.path, &[]),
        };
        let target = upstream::Target {
            method: op.method.clone(),
            url: upstream::url_for(&account.base_url, &path, &op.query)?,
            headers: HeaderMap::new(),
            body: Some(body),
        };
        self.call(account, target, call::CallKind::Write)
            .await
            .map_err(rejected)
    }

    /// The record a write produced: from the reply when the vendor returns it, else fetched.
    async fn written_record(
        &self,
        account: &AccountHandle,
        resource: &str,
        op: &WriteOperation,
        reply: upstream::Reply,
        known_id: Option<&str>,
    ) -> Result<Record, EngineError> {
        if let Some(pointer) = &op.record_pointer
            && let Some(record @ Value::Object(_)) = reply.body.pointer(pointer)
        {
            return self.map_one(account, resource, record.clone()).await;
        }
        let id = match (&op.id_pointer, known_id) {
            (Some(pointer), _) => match reply.body.pointer(pointer) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => {
                    return Err(EngineError::Drift {
                        what: format!("the write response has no id at `{pointer}`"),
                    });
                }
            },
            (None, Some(id)) => id.to_string(),
            (None, None) => {
                return Err(EngineError::Drift {
                    what: "the write response holds no record".into(),
                });
            }
        };
        self.get(account, resource, &id)
            .await?
            .ok_or_else(|| EngineError::Drift {
                what: format!("the written record `{id}` cannot be read back"),
            })
    }
}

fn unsupported(account: &AccountHandle, resource: &str, operation: &'static str) -> EngineError {
    EngineError::Unsupported {
        provider: account.provider.name.clone(),
        resource: resource.to_string(),
        operation,
    }
}

/// A short stable digest of a JSON value (a listing's filters, bound into its cursors).
fn digest(value: &Value) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(value.to_string().as_bytes())[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Engine {
    /// The query parameters a listing's filters translate to, through the provider's JSONata.
    async fn filter_params(
        &self,
        account: &AccountHandle,
        op: &ListOperation,
        filter: &Map<String, Value>,
    ) -> Result<Vec<(String, String)>, EngineError> {
        if filter.is_empty() {
            return Ok(Vec::new());
        }
        let vars = filter_vars(filter);
        let mut out = Vec::new();
        for (param, expr) in &op.filter_query {
            let value = self
                .mapper
                .evaluate(account, expr, None, vars.clone())
                .await?
                .map_err(refused_or_broken)?;
            if let Some(v) = value {
                out.push((param.clone(), upstream::query_text(&v)));
            }
        }
        Ok(out)
    }

    /// The object a listing's filters put in its request body (`filterBody`), if any.
    async fn filter_body(
        &self,
        account: &AccountHandle,
        op: &ListOperation,
        filter: &Map<String, Value>,
    ) -> Result<Option<Map<String, Value>>, EngineError> {
        let Some(expr) = op.filter_body.as_ref().filter(|_| !filter.is_empty()) else {
            return Ok(None);
        };
        let value = self
            .mapper
            .evaluate(account, expr, None, filter_vars(filter))
            .await?
            .map_err(refused_or_broken)?;
        match value {
            Some(Value::Object(map)) => Ok(Some(map)),
            None => Ok(None),
            Some(other) => Err(EngineError::NotAnObject {
                what: "filterBody",
                got: crate::mapping::json_kind(&other),
            }),
        }
    }
}

/// `$filter`: the caller's filters, for the provider's filter expressions.
fn filter_vars(filter: &Map<String, Value>) -> Vars {
    let mut vars = Map::new();
    vars.insert("filter".into(), Value::Object(filter.clone()));
    Vars::from_map(vars)
}

/// A list operation with what the caller's filters made of its query and body.
struct FilteredList<'a> {
    op: &'a ListOperation,
    filter_query: &'a [(String, String)],
    filter_body: Option<&'a Map<String, Value>>,
}

/// A listing's request body: the file's fixed body with the filters' object merged over it.
fn list_body(op: &ListOperation, filter_body: Option<&Map<String, Value>>) -> Option<Value> {
    let Some(extra) = filter_body else {
        return op.body.clone();
    };
    let mut body = match &op.body {
        Some(Value::Object(map)) => map.clone(),
        _ => Map::new(),
    };
    body.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    Some(Value::Object(body))
}

/// A request mapping's failure: `$error(...)` (code D3137) is the provider file refusing
/// the caller's input on purpose; anything else is a broken mapping.
fn refused_or_broken(e: MappingError) -> EngineError {
    if e.code == "D3137" {
        EngineError::InputRefused { message: e.message }
    } else {
        EngineError::Mapping(e)
    }
}

/// A vendor refusing the data of a write (validation, conflict) is the caller's to fix.
fn rejected(err: EngineError) -> EngineError {
    match err {
        EngineError::Upstream {
            status: status @ (400 | 409 | 422),
            summary,
        } => EngineError::Rejected { status, summary },
        other => other,
    }
}

/// A vendor answer passed through unchanged, with its rate-limit figures read.
#[derive(Debug)]
pub struct Passthrough {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    pub rate_limit: RateLimit,
}

impl Engine {
    /// Sends a caller's raw request to the account's API (`path` relative to its base URL)
    /// with the account's credentials, and returns the vendor's answer as is. A path that
    /// would leave the base URL (`..`, an absolute URL, a scheme) is refused.
    pub async fn passthrough(
        &self,
        account: &AccountHandle,
        method: reqwest::Method,
        path: &str,
        query: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Passthrough, EngineError> {
        let url = upstream::passthrough_url(&account.base_url, path, query)?;
        // For the log: the method, and the path without its query (which can hold secrets).
        let (logged_method, logged_path) = (method.to_string(), url.path().to_string());
        // The account's concurrency ceiling holds for passed-through calls too.
        let _slot = self.gates.enter(&account.id).await;
        let started = std::time::Instant::now();
        // Passed through as the vendor answers: no retries, but logged and counted.
        let result = match self.upstreams.check_url(&url) {
            Ok(()) => {
                upstream::send_raw(&self.http, account, method, url, content_type, body).await
            }
            Err(refused) => Err(EngineError::UpstreamRefused(refused)),
        };
        let (status, rate_limit, error_class) = match &result {
            Ok(p) => (Some(p.status), p.rate_limit.clone(), None),
            Err(e) => (e.status(), RateLimit::default(), Some(e.class())),
        };
        let throttled = status == Some(429);
        self.note_budget(&account.id, &rate_limit, throttled);
        if let Some(o) = &self.observer {
            o.call(&CallRecord {
                account_id: account.id.clone(),
                provider: account.provider.name.clone(),
                method: logged_method,
                path: logged_path,
                status,
                latency: started.elapsed(),
                rate_limit,
                error_class,
                retry: 0,
                throttled,
            });
        }
        result
    }
}

impl Engine {
    /// A record from a raw vendor record of `resource` (stored earlier, e.g. an idempotent
    /// write's result), mapped as if it had just been read.
    pub async fn record_from_raw(
        &self,
        account: &AccountHandle,
        resource: &str,
        raw: Value,
    ) -> Result<Record, EngineError> {
        Self::resource(account, resource, "get")?;
        self.map_one(account, resource, raw).await
    }

    /// Maps one raw record of `resource` (a read, a write's result).
    async fn map_one(
        &self,
        account: &AccountHandle,
        resource: &str,
        raw: Value,
    ) -> Result<Record, EngineError> {
        let mut records = self.mapper.map(account, resource, vec![(0, raw)]).await?;
        records.pop().ok_or(EngineError::MappingAborted)
    }
}
