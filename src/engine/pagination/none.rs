//! Everything in one response.

use super::{PageTarget, PageView, Paginator};

pub struct NoPagination;

impl Paginator for NoPagination {
    fn target(&self, _state: Option<&str>, _page_size: usize) -> PageTarget {
        PageTarget::Params(Vec::new())
    }

    fn next_state(&self, _page: &PageView<'_>) -> Option<String> {
        None
    }
}
