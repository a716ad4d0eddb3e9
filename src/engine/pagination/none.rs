//! Everything in one response.

use serde_json::Value;

use super::Paginator;

pub struct NoPagination;

impl Paginator for NoPagination {
    fn page_query(&self, _state: Option<&str>, _page_size: usize) -> Vec<(String, String)> {
        Vec::new()
    }

    fn next_state(&self, _body: &Value) -> Option<String> {
        None
    }
}
