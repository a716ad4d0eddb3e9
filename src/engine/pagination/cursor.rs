//! An opaque cursor read from the body and sent back as a query parameter
//! (`paging.next.after`, `additional_data.next_cursor` and the like).

use serde_json::Value;

use super::Paginator;
use crate::config::CursorPagination;

impl Paginator for CursorPagination {
    fn page_query(&self, state: Option<&str>, page_size: usize) -> Vec<(String, String)> {
        let mut q = vec![(self.limit_param.clone(), page_size.to_string())];
        if let Some(cursor) = state {
            q.push((self.cursor_param.clone(), cursor.to_string()));
        }
        q
    }

    fn next_state(&self, body: &Value) -> Option<String> {
        // An empty string or null cursor means "no more pages" for every vendor seen.
        match body.pointer(&self.cursor_pointer)? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn strategy() -> CursorPagination {
        CursorPagination {
            cursor_pointer: "/paging/next/after".into(),
            cursor_param: "after".into(),
            limit_param: "limit".into(),
            max_page_size: 100,
        }
    }

    #[test]
    fn reads_the_next_cursor_and_stops_without_one() {
        let s = strategy();
        assert_eq!(
            s.next_state(&json!({"paging": {"next": {"after": "NTI1"}}})),
            Some("NTI1".into())
        );
        assert_eq!(s.next_state(&json!({"results": []})), None);
        assert_eq!(
            s.next_state(&json!({"paging": {"next": {"after": null}}})),
            None
        );
        assert_eq!(
            s.page_query(Some("NTI1"), 7),
            vec![
                ("limit".to_string(), "7".to_string()),
                ("after".to_string(), "NTI1".to_string())
            ]
        );
    }
}
