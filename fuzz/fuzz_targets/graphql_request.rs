//! The GraphQL request path (`tessera::graphql`): the served schema, built once from the
//! unified model, executes the input as `POST /graphql` would after authentication.
//!
//! Input: a request body (`{"query": ..., "variables": ..., "operationName": ...}`, parsed
//! as the HTTP layer parses it), or else the query text alone. The schema has no services
//! (no database, no vendor): parsing, the recursion and directive limits, the query cost
//! extension, validation (depth, complexity, types, variables) and execution up to the
//! resolvers run; a resolver that needs the services answers an error.
//!
//! Checks, besides "no panic":
//! - the cost extension refuses exactly the documents `cost::estimate` prices over the
//!   limit, with that estimate in `extensions.cost`, and a refused query has no data;
//! - so does a document that expands beyond `cost::MAX_EXPANDED_FIELDS` (fragments
//!   counted where they are spread), and no input takes long (the per-input time limit of
//!   `run.sh` reports one that does as a hang);
//! - the response serializes (as the HTTP layer writes it).
#![no_main]

use std::path::Path;
use std::sync::{Arc, OnceLock};

use async_graphql::dynamic::Schema;
use async_graphql::{Request, Value};
use libfuzzer_sys::fuzz_target;
use tessera::access::Caller;
use tessera::graphql::RequestState;
use tessera::graphql::cost::{self, PriceList};

struct Fixture {
    schema: Schema,
    prices: PriceList,
    runtime: tokio::runtime::Runtime,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema");
        let model = tessera::schema::load_dir(&dir)
            .unwrap_or_else(|e| panic!("the unified model does not load: {e:?}"));
        Fixture {
            schema: tessera::graphql::build_schema(&model, None)
                .unwrap_or_else(|e| panic!("the schema does not build: {e}")),
            prices: PriceList::new(&model),
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap_or_else(|e| panic!("no runtime: {e}")),
        }
    })
}

/// The `extensions.cost.estimated` of a refused query, if it was refused for its cost.
fn refused_cost(response: &async_graphql::Response) -> Option<u64> {
    response.errors.iter().find_map(|e| {
        let cost = e.extensions.as_ref()?.get("cost")?;
        match cost {
            Value::Object(fields) => match fields.get("estimated")? {
                Value::Number(n) => n.as_u64(),
                _ => None,
            },
            _ => None,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let request: Request = match serde_json::from_slice(data) {
        Ok(r) => r,
        Err(_) => Request::new(String::from_utf8_lossy(data)),
    };
    // A document that expands beyond the cap is refused before pricing; pricing it here
    // would be the exponential walk the cap prevents.
    let parsed = async_graphql::parser::parse_query(&request.query).ok();
    let too_large = parsed
        .as_ref()
        .is_some_and(|doc| cost::expands_beyond(doc, cost::MAX_EXPANDED_FIELDS));
    let estimate = parsed
        .filter(|_| !too_large)
        .map(|doc| cost::estimate(&f.prices, &doc, &request.variables));
    let request = request
        .data(Caller::Admin)
        .data(Arc::new(RequestState::default()));
    let response = f.runtime.block_on(f.schema.execute(request));
    let over = estimate.filter(|e| *e > cost::DEFAULT_LIMIT);
    if let Some(refused) = refused_cost(&response) {
        assert_eq!(Some(refused), over, "refused for a cost it does not have");
    }
    if over.is_some() || too_large {
        assert!(
            !response.errors.is_empty() && matches!(response.data, Value::Null),
            "a query over the cost limit ran"
        );
    }
    serde_json::to_vec(&response)
        .unwrap_or_else(|e| panic!("the response does not serialize: {e}"));
});
