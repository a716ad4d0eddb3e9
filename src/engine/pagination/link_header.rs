//! RFC 8288: `Link: <https://api.example.com/items?page=2>; rel="next"`.

use super::{PageTarget, PageView, Paginator, size};
use crate::config::LinkHeaderPagination;

impl Paginator for LinkHeaderPagination {
    fn target(&self, state: Option<&str>, page_size: usize) -> PageTarget {
        match state {
            Some(url) => PageTarget::Url(url.to_string()),
            None => PageTarget::Params(vec![(self.limit_param.clone(), size(page_size))]),
        }
    }

    fn next_state(&self, page: &PageView<'_>) -> Option<String> {
        page.headers
            .get_all(reqwest::header::LINK)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(next_link)
    }
}

/// The target of the `rel="next"` link in one `Link` header value.
fn next_link(header: &str) -> Option<String> {
    for part in header.split(',') {
        let mut pieces = part.split(';');
        let target = pieces.next()?.trim();
        let url = target.strip_prefix('<')?.strip_suffix('>')?;
        let is_next = pieces.any(|p| {
            let p = p.trim();
            p.strip_prefix("rel=")
                .map(|rel| {
                    rel.trim_matches('"')
                        .split_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("next"))
                })
                .unwrap_or(false)
        });
        if is_next {
            return Some(url.to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_next_relation_among_several() {
        assert_eq!(
            next_link(
                r#"<https://a.example/i?page=1>; rel="prev", <https://a.example/i?page=3>; rel="next""#
            ),
            Some("https://a.example/i?page=3".into())
        );
        assert_eq!(
            next_link(r#"<https://a.example/i?page=1>; rel="first""#),
            None
        );
        assert_eq!(next_link("garbage"), None);
    }
}
