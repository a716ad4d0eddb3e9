//! An offset and a limit; the end is a has-more flag, or a short page.

use serde_json::Value;

use super::{PageTarget, PageView, Paginator, size};
use crate::config::{OffsetPagination, Placement};

impl Paginator for OffsetPagination {
    fn target(&self, state: Option<&str>, page_size: usize) -> PageTarget {
        let offset: u64 = state.and_then(|s| s.parse().ok()).unwrap_or(0);
        PageTarget::Params(vec![
            (self.offset_param.clone(), Value::from(offset)),
            (self.limit_param.clone(), size(page_size)),
        ])
    }

    fn next_state(&self, page: &PageView<'_>) -> Option<String> {
        let more = match &self.has_more_pointer {
            Some(p) => page
                .body
                .pointer(p)
                .and_then(Value::as_bool)
                .unwrap_or(false),
            None => page.records >= page.page_size && page.records > 0,
        };
        let offset: usize = page.state.and_then(|s| s.parse().ok()).unwrap_or(0);
        more.then(|| (offset + page.records).to_string())
    }

    fn placement(&self) -> Placement {
        self.placement
    }

    fn explicit_more(&self) -> bool {
        self.has_more_pointer.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderMap;
    use serde_json::json;

    #[test]
    fn advances_by_the_records_received_and_stops_on_a_short_page() {
        let s = OffsetPagination {
            offset_param: "_skip".into(),
            limit_param: "_limit".into(),
            max_page_size: 100,
            has_more_pointer: None,
            placement: Placement::Query,
        };
        let h = HeaderMap::new();
        let body = json!({});
        assert_eq!(
            s.next_state(&PageView {
                body: &body,
                headers: &h,
                state: Some("20"),
                page_size: 10,
                records: 10
            }),
            Some("30".into())
        );
        assert_eq!(
            s.next_state(&PageView {
                body: &body,
                headers: &h,
                state: Some("30"),
                page_size: 10,
                records: 3
            }),
            None
        );
        assert_eq!(
            s.target(Some("30"), 10),
            PageTarget::Params(vec![
                ("_skip".into(), json!(30)),
                ("_limit".into(), json!(10))
            ])
        );
    }
}
