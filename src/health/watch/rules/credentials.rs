//! TOKEN_REVOKED: the account's credentials no longer work. The token manager moves an
//! account to NEEDS_REAUTH (with the vendor's reason) when a refresh fails with
//! invalid_grant or a vendor refuses a token it cannot refresh, and a probe reports AUTH;
//! either is enough. Cleared when the account is ACTIVE again and calls are not refused.

use serde_json::json;

use super::{Subject, Verdict};

pub fn token_revoked(s: &Subject<'_>) -> Verdict {
    let status = s.account.status.as_str();
    let recent = s.watch.recent_calls();
    let probe_auth = s
        .failing_probe
        .filter(|p| p.failure_class.as_deref() == Some("AUTH"));
    if matches!(status, "NEEDS_REAUTH" | "REVOKED") || probe_auth.is_some() {
        return Verdict::Active(json!({
            "status": status,
            "reason": s.account.status_reason,
            "probe": probe_auth.map(|p| json!({
                "class": p.failure_class,
                "httpStatus": p.failure_status,
                "message": p.failure_message,
            })),
            "refusedCalls": recent.unauthorized,
        }));
    }
    if status == "ACTIVE" && recent.unauthorized == 0 {
        Verdict::Clear
    } else {
        Verdict::Unknown
    }
}
