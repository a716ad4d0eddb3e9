//! The planned execution path: a query the planner covers is answered without
//! async-graphql's per-field resolution. Its plan (which listings to read, which fields of
//! each record to write, under which conditions) is built once per document and cached;
//! executing it reads the listings and writes the response JSON in one pass over the
//! records, with no future, no `FieldValue` and no intermediate GraphQL value per field.
//!
//! It answers exactly as async-graphql would, byte for byte (a differential test holds
//! both to that). Whatever it does not cover goes through async-graphql as before, and so
//! does any request the plan cannot finish as planned: a variable of the wrong type, a
//! query over the cost limit, an account or vendor error, a mapping error, a null where the
//! schema says non-null, a warning to report. Those are the paths with errors, and
//! async-graphql writes errors; the listings already read are handed over in the request
//! state, so the vendor is never asked twice.
//!
//! A document is planned only after async-graphql has answered it once without errors:
//! that run validated it against the schema (names, types, fragments, depth, complexity),
//! so the planner relies on validation rather than repeating it.

mod build;
mod run;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_graphql::Name;
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Value as ConstValue, Variables};
use sha2::{Digest, Sha256};

use super::RequestState;
use super::cost::{CostLimit, PriceList};
use crate::access::Caller;
use crate::schema::UnifiedModel;
use crate::services::SharedServices;

/// Documents whose plan (or whose not being plannable) is remembered; past this many the
/// cache starts again, so a client sending endless distinct documents costs bounded memory.
const MAX_PLANS: usize = 1024;
/// Longer documents are not planned: a plan keeps its document, and 1,024 of the largest
/// body the gateway takes (1 MiB) would be a gigabyte. Queries are a few hundred bytes.
const MAX_PLANNED_DOCUMENT: usize = 16 * 1024;

/// A document's plan, by the SHA-256 of its text and the operation's name.
type PlanKey = [u8; 32];

/// Plans of the documents seen, and the switch that turns the planned path off (the
/// differential test runs every query both ways).
pub struct Planner {
    model: UnifiedModel,
    prices: PriceList,
    limit: CostLimit,
    enabled: AtomicBool,
    plans: Mutex<HashMap<PlanKey, Option<Arc<Plan>>>>,
    answered: AtomicU64,
    executed: AtomicU64,
}

/// What the planner knows about a request's document.
pub enum Lookup {
    /// Planned: try it.
    Plan(Arc<Plan>),
    /// Not seen yet: after async-graphql answers it without errors, [`Planner::learn`].
    Unseen(PlanKey),
    /// Not covered (or the planner is off).
    Declined,
}

impl Planner {
    pub fn new(model: &UnifiedModel, limit: CostLimit) -> Planner {
        Planner {
            model: model.clone(),
            prices: PriceList::new(model),
            limit,
            enabled: AtomicBool::new(true),
            plans: Mutex::new(HashMap::new()),
            answered: AtomicU64::new(0),
            executed: AtomicU64::new(0),
        }
    }

    /// Turns the planned path on or off (every request then goes through async-graphql).
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Relaxed);
    }

    /// Requests the planned path has answered since the start.
    pub fn answered(&self) -> u64 {
        self.answered.load(Ordering::Relaxed)
    }

    /// Counts a request answered by async-graphql instead.
    pub fn count_executed(&self) {
        self.executed.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests async-graphql answered since the start (`/metrics` shows both counts).
    pub fn executed(&self) -> u64 {
        self.executed.load(Ordering::Relaxed)
    }

    pub fn lookup(&self, query: &str, operation_name: Option<&str>) -> Lookup {
        if !self.enabled.load(Ordering::Relaxed) {
            return Lookup::Declined;
        }
        let key = plan_key(query, operation_name);
        let Ok(plans) = self.plans.lock() else {
            return Lookup::Declined;
        };
        match plans.get(&key) {
            Some(Some(plan)) => Lookup::Plan(plan.clone()),
            Some(None) => Lookup::Declined,
            None => Lookup::Unseen(key),
        }
    }

    /// Plans a document async-graphql has just answered without errors (so it is valid).
    pub fn learn(&self, key: PlanKey, query: &str, operation_name: Option<&str>) {
        let planned = (query.len() <= MAX_PLANNED_DOCUMENT)
            .then(|| async_graphql::parser::parse_query(query).ok())
            .flatten()
            .and_then(|doc| build::plan(&self.model, Arc::new(doc), operation_name))
            .map(Arc::new);
        if let Ok(mut plans) = self.plans.lock() {
            if plans.len() >= MAX_PLANS {
                plans.clear();
            }
            plans.insert(key, planned);
        }
    }

    /// The response body of `plan` for these variables, or `None` to hand the request to
    /// async-graphql (with whatever was read kept in `state`).
    pub async fn answer(
        &self,
        plan: &Plan,
        services: &SharedServices,
        caller: &Caller,
        variables: &Variables,
        state: &Arc<RequestState>,
    ) -> Option<Vec<u8>> {
        if super::cost::estimate(&self.prices, &plan.doc, variables) > self.limit.0 {
            return None;
        }
        let body = run::run(plan, services, caller, variables, state).await?;
        self.answered.fetch_add(1, Ordering::Relaxed);
        Some(body)
    }
}

fn plan_key(query: &str, operation_name: Option<&str>) -> PlanKey {
    let mut hash = Sha256::new();
    hash.update(query.as_bytes());
    // A separator no query text contains, so ("ab", "c") and ("a", "bc") differ.
    hash.update([0xff]);
    if let Some(name) = operation_name {
        hash.update(name.as_bytes());
    }
    hash.finalize().into()
}

/// One operation, planned.
pub struct Plan {
    /// Kept for the per-request cost estimate, which depends on the variables.
    doc: Arc<ExecutableDocument>,
    variables: Vec<VariableDef>,
    roots: Vec<Item<Root>>,
}

/// A declared variable of a scalar type (the only kind the planner takes).
struct VariableDef {
    name: Name,
    kind: ScalarVar,
    nullable: bool,
    default: Option<ConstValue>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScalarVar {
    Id,
    String,
    Int,
    Boolean,
}

/// An argument as the document gives it.
#[derive(Debug, Clone)]
enum Arg {
    Absent,
    Variable(Name),
    String(String),
    Int(i64),
    Bool(bool),
}

/// `@include(if:)` (`include`) or `@skip(if:)`.
#[derive(Debug, Clone)]
struct Condition {
    include: bool,
    value: Arg,
}

/// A selected field: its response key, the conditions it sits under, what it is.
struct Item<T> {
    key: Name,
    conditions: Vec<Condition>,
    what: T,
}

enum Root {
    Typename,
    List(ListRoot),
    Single(SingleRoot),
}

/// `contact(id:)` or `contact(accountId:, remoteId:)`.
struct SingleRoot {
    resource: Arc<str>,
    type_name: Arc<str>,
    id: Arg,
    account: Arg,
    remote_id: Arg,
    items: Vec<Item<NodeItem>>,
}

struct ListRoot {
    resource: Arc<str>,
    type_name: Arc<str>,
    account: Arg,
    first: Arg,
    after: Arg,
    items: Vec<Item<ConnectionItem>>,
}

enum ConnectionItem {
    Typename,
    Edges(Vec<Item<EdgeItem>>),
    PageInfo(Vec<Item<PageInfoItem>>),
}

enum EdgeItem {
    Typename,
    Cursor,
    Node(Vec<Item<NodeItem>>),
}

enum PageInfoItem {
    Typename,
    HasNextPage,
    EndCursor,
}

enum NodeItem {
    Typename,
    Id,
    RemoteId,
    RemoteData,
    /// A field of the record's mapped JSON.
    Mapped {
        field: Arc<str>,
        shape: super::values::Shape,
        object: Option<Vec<Item<ObjectItem>>>,
    },
}

/// A field of a value object (`Email.address`).
enum ObjectItem {
    Typename(Arc<str>),
    Field {
        field: Arc<str>,
        shape: super::values::Shape,
        object: Option<Vec<Item<ObjectItem>>>,
    },
}
