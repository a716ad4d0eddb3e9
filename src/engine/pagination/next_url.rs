//! The next page's URL read from the body (`nextRecordsUrl`, `@odata.nextLink`). The
//! engine checks that it stays on the provider's origin.

use serde_json::Value;

use super::{PageTarget, PageView, Paginator, size};
use crate::config::NextUrlPagination;

impl Paginator for NextUrlPagination {
    fn target(&self, state: Option<&str>, page_size: usize) -> PageTarget {
        match state {
            Some(url) => PageTarget::Url(url.to_string()),
            None => PageTarget::Params(
                self.limit_param
                    .iter()
                    .map(|p| (p.clone(), size(page_size)))
                    .collect(),
            ),
        }
    }

    fn next_state(&self, page: &PageView<'_>) -> Option<String> {
        match page.body.pointer(&self.next_url_pointer)? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            _ => None,
        }
    }
}
