//! UPSTREAM_DOWN (repeated 5xx) and NETWORK_FAILURE (the way to the vendor fails: DNS, TCP
//! connect, TLS, timeouts). One 503 or one slow answer is noise; repeated failures since
//! the last success (or outnumbering the successes of the window), or a probe that found
//! the network broken, are not.

use serde_json::json;

use super::{Subject, Verdict};

/// 5xx answers within the window that make an outage, when they outnumber the successes.
const SERVER_ERRORS: u64 = 3;
/// Network failures within the window that make an alert, when nothing succeeded.
const NETWORK_FAILURES: u64 = 2;

pub fn upstream_down(s: &Subject<'_>) -> Verdict {
    let recent = s.watch.recent_calls();
    let since_ok = s.watch.since_last_success();
    if since_ok.server_errors >= SERVER_ERRORS
        || (recent.server_errors >= SERVER_ERRORS && recent.server_errors > recent.ok)
    {
        return Verdict::Active(json!({
            "serverErrors": recent.server_errors,
            "succeeded": recent.ok,
        }));
    }
    if recent.server_errors == 0 && recent.ok > 0 {
        Verdict::Clear
    } else {
        Verdict::Unknown
    }
}

pub fn network_failure(s: &Subject<'_>) -> Verdict {
    let recent = s.watch.recent_calls();
    // DNS and TLS failures are not transient noise; a timeout or a refused connection is
    // when it happens once.
    let probe = s
        .failing_probe
        .filter(|p| match p.failure_class.as_deref() {
            Some("DNS" | "TLS") => true,
            Some("TCP_CONNECT" | "TIMEOUT") => p.consecutive_failures >= 2,
            _ => false,
        });
    let since_ok = s.watch.since_last_success();
    if since_ok.network >= NETWORK_FAILURES || probe.is_some() {
        return Verdict::Active(json!({
            "failedCalls": since_ok.network,
            "class": probe
                .and_then(|p| p.failure_class.clone())
                .or_else(|| since_ok.network_class.as_deref().map(str::to_uppercase)),
            "probe": probe.map(|p| json!({
                "class": p.failure_class,
                "message": p.failure_message,
                "inARow": p.consecutive_failures,
            })),
        }));
    }
    let probe_network = s.failing_probe.is_some_and(|p| {
        matches!(
            p.failure_class.as_deref(),
            Some("DNS" | "TLS" | "TCP_CONNECT" | "TIMEOUT")
        )
    });
    if recent.network == 0 && !probe_network && recent.ok > 0 {
        Verdict::Clear
    } else {
        Verdict::Unknown
    }
}
