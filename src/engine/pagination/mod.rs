//! Pagination strategies: one file per variant of [`Pagination`], one `match` here.
//!
//! A strategy knows how to ask for the page at a given state and how to read the state of
//! the next page from a response. The state is an opaque string the engine carries inside
//! its signed Relay cursors, so a listing can resume where it stopped.

mod cursor;
mod none;

use serde_json::Value;

use crate::config::Pagination;

pub trait Paginator: Send + Sync {
    /// Extra query parameters for the page at `state` (`None`: the first page).
    fn page_query(&self, state: Option<&str>, page_size: usize) -> Vec<(String, String)>;
    /// The state of the following page, read from this page's body; `None` at the end.
    fn next_state(&self, body: &Value) -> Option<String>;
}

pub fn paginator(config: &Pagination) -> &dyn Paginator {
    match config {
        Pagination::None => &none::NoPagination,
        Pagination::Cursor(c) => c,
    }
}
