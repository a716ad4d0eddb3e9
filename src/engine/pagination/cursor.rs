//! An opaque cursor or page token read from the body and sent back as a parameter
//! (`paging.next.after`, `additional_data.next_cursor`, `nextPageToken`).

use serde_json::Value;

use super::{PageTarget, PageView, Paginator, size};
use crate::config::{CursorPagination, Placement};

impl Paginator for CursorPagination {
    fn target(&self, state: Option<&str>, page_size: usize) -> PageTarget {
        let mut params = vec![(self.limit_param.clone(), size(page_size))];
        if let Some(cursor) = state {
            params.push((self.cursor_param.clone(), Value::String(cursor.to_string())));
        }
        PageTarget::Params(params)
    }

    fn next_state(&self, page: &PageView<'_>) -> Option<String> {
        // An empty string or null cursor means "no more pages" for every vendor seen.
        match page.body.pointer(&self.cursor_pointer)? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    fn placement(&self) -> Placement {
        self.placement
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderMap;
    use serde_json::json;

    #[test]
    fn reads_the_next_cursor_and_stops_without_one() {
        let s = CursorPagination {
            cursor_pointer: "/paging/next/after".into(),
            cursor_param: "after".into(),
            limit_param: "limit".into(),
            max_page_size: 100,
            placement: Placement::Query,
        };
        let headers = HeaderMap::new();
        let view = |body: &Value| {
            s.next_state(&PageView {
                body,
                headers: &headers,
                state: None,
                page_size: 7,
                records: 7,
            })
        };
        assert_eq!(
            view(&json!({"paging": {"next": {"after": "NTI1"}}})),
            Some("NTI1".into())
        );
        assert_eq!(view(&json!({"results": []})), None);
        assert_eq!(view(&json!({"paging": {"next": {"after": null}}})), None);
        assert_eq!(
            s.target(Some("NTI1"), 7),
            PageTarget::Params(vec![
                ("limit".into(), json!(7)),
                ("after".into(), json!("NTI1"))
            ])
        );
    }
}
