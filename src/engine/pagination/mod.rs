//! Pagination strategies: one file per variant of [`Pagination`], one `match` here.
//!
//! A strategy says how to ask for the page at a given state, and how to read the state of
//! the following page from a response. The state is an opaque string the engine carries in
//! its signed Relay cursors, so a listing resumes exactly where it stopped.

mod cursor;
mod link_header;
mod next_url;
mod none;
mod offset;
mod page_number;

use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::config::{Pagination, Placement};

/// Where the next page is.
#[derive(Debug, Clone, PartialEq)]
pub enum PageTarget {
    /// The list operation's request plus these paging parameters.
    Params(Vec<(String, Value)>),
    /// A URL the vendor gave (relative or absolute); requested as is.
    Url(String),
}

/// What a strategy may read of a page it just received.
pub struct PageView<'a> {
    pub body: &'a Value,
    pub headers: &'a HeaderMap,
    pub state: Option<&'a str>,
    pub page_size: usize,
    pub records: usize,
}

pub trait Paginator: Send + Sync {
    fn target(&self, state: Option<&str>, page_size: usize) -> PageTarget;
    /// The state of the following page; `None` at the end.
    fn next_state(&self, page: &PageView<'_>) -> Option<String>;
    fn placement(&self) -> Placement {
        Placement::Query
    }
    /// Whether the vendor says explicitly that more pages follow. If so, an empty page after
    /// that signal is a vendor fault; strategies that stop on a short page expect one.
    fn explicit_more(&self) -> bool {
        true
    }
}

pub fn paginator(config: &Pagination) -> &dyn Paginator {
    match config {
        Pagination::None => &none::NoPagination,
        Pagination::Cursor(c) | Pagination::PageToken(c) => c,
        Pagination::NextUrl(n) => n,
        Pagination::Offset(o) => o,
        Pagination::PageNumber(p) => p,
        Pagination::LinkHeader(l) => l,
    }
}

/// A page size as a JSON number parameter.
fn size(page_size: usize) -> Value {
    Value::from(page_size as u64)
}
