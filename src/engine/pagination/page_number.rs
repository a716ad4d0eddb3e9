//! A page number and a size; the end is a more-records flag, or a short page. A token the
//! vendor returns can replace the page number (deep paging past a page-number limit is data: the
//! provider file names the token path and parameter).

use serde_json::Value;

use super::{PageTarget, PageView, Paginator, size};
use crate::config::{PageNumberPagination, Placement};

/// States are `p:<number>` or `t:<token>`.
impl Paginator for PageNumberPagination {
    fn target(&self, state: Option<&str>, page_size: usize) -> PageTarget {
        let sized = (self.size_param.clone(), size(page_size));
        match state
            .and_then(|s| s.strip_prefix("t:"))
            .zip(self.next_token.as_ref())
        {
            Some((token, (_, param))) => PageTarget::Params(vec![
                (param.clone(), Value::String(token.to_string())),
                sized,
            ]),
            None => {
                let page: u64 = state
                    .and_then(|s| s.strip_prefix("p:"))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(self.first_page.into());
                PageTarget::Params(vec![(self.page_param.clone(), Value::from(page)), sized])
            }
        }
    }

    fn next_state(&self, page: &PageView<'_>) -> Option<String> {
        let more = match &self.more_pointer {
            Some(p) => page
                .body
                .pointer(p)
                .and_then(Value::as_bool)
                .unwrap_or(false),
            None => page.records >= page.page_size && page.records > 0,
        };
        if !more {
            return None;
        }
        if let Some((pointer, _)) = &self.next_token
            && let Some(Value::String(token)) = page.body.pointer(pointer)
            && !token.is_empty()
        {
            return Some(format!("t:{token}"));
        }
        let current: u64 = page
            .state
            .and_then(|s| s.strip_prefix("p:"))
            .and_then(|n| n.parse().ok())
            .unwrap_or(self.first_page.into());
        Some(format!("p:{}", current + 1))
    }

    fn placement(&self) -> Placement {
        self.placement
    }

    fn explicit_more(&self) -> bool {
        self.more_pointer.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderMap;
    use serde_json::json;

    #[test]
    fn numbers_pages_and_switches_to_tokens_when_given() {
        let s = PageNumberPagination {
            page_param: "page".into(),
            size_param: "per_page".into(),
            max_page_size: 200,
            first_page: 1,
            more_pointer: Some("/info/more_records".into()),
            next_token: Some(("/info/next_page_token".into(), "page_token".into())),
            placement: Placement::Query,
        };
        let h = HeaderMap::new();
        let more = json!({"info": {"more_records": true}});
        let tok = json!({"info": {"more_records": true, "next_page_token": "abc"}});
        let end = json!({"info": {"more_records": false, "next_page_token": "abc"}});
        let v = |body: &Value, state: Option<&str>| {
            s.next_state(&PageView {
                body,
                headers: &h,
                state,
                page_size: 200,
                records: 200,
            })
        };
        assert_eq!(v(&more, None), Some("p:2".into()));
        assert_eq!(v(&more, Some("p:2")), Some("p:3".into()));
        assert_eq!(v(&tok, Some("p:3")), Some("t:abc".into()));
        assert_eq!(v(&end, Some("p:3")), None);
        assert_eq!(
            s.target(Some("t:abc"), 200),
            PageTarget::Params(vec![
                ("page_token".into(), json!("abc")),
                ("per_page".into(), json!(200))
            ])
        );
        assert_eq!(
            s.target(None, 50),
            PageTarget::Params(vec![
                ("page".into(), json!(1)),
                ("per_page".into(), json!(50))
            ])
        );
    }
}
