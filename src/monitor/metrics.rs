//! Prometheus counters and histograms, kept by hand: a few maps behind one lock, rendered
//! in the text exposition format. Labels are provider names and fixed outcome classes, so
//! the series stay few (no per-account labels).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Default)]
struct Inner {
    /// (provider, outcome) -> calls; outcome is `ok` or an error class.
    calls: BTreeMap<(String, String), u64>,
    latency: BTreeMap<String, Histogram>,
    rate_limited: BTreeMap<String, u64>,
    retries: BTreeMap<String, u64>,
    /// (provider, `open`|`closed`) -> transitions.
    breaker: BTreeMap<(String, String), u64>,
    /// Request-log entries dropped because the writer fell behind.
    log_dropped: u64,
}

/// A series family kept elsewhere and read at render time; samples are (labels, value).
pub struct Gauge<'a> {
    pub name: &'a str,
    pub help: &'a str,
    /// `gauge` or `counter`.
    pub kind: &'a str,
    pub samples: Vec<(String, f64)>,
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    pub fn call(
        &self,
        provider: &str,
        outcome: &str,
        latency: Duration,
        retry: bool,
        throttled: bool,
    ) {
        let Ok(mut m) = self.inner.lock() else {
            return;
        };
        *m.calls
            .entry((provider.to_string(), outcome.to_string()))
            .or_default() += 1;
        let h = m.latency.entry(provider.to_string()).or_default();
        let secs = latency.as_secs_f64();
        for (i, le) in BUCKETS.iter().enumerate() {
            if secs <= *le {
                h.counts[i] += 1;
            }
        }
        h.sum += secs;
        h.count += 1;
        if retry {
            *m.retries.entry(provider.to_string()).or_default() += 1;
        }
        if throttled {
            *m.rate_limited.entry(provider.to_string()).or_default() += 1;
        }
    }

    pub fn breaker(&self, provider: &str, open: bool) {
        if let Ok(mut m) = self.inner.lock() {
            let to = if open { "open" } else { "closed" };
            *m.breaker
                .entry((provider.to_string(), to.to_string()))
                .or_default() += 1;
        }
    }

    pub fn log_dropped(&self) {
        if let Ok(mut m) = self.inner.lock() {
            m.log_dropped += 1;
        }
    }

    /// The exposition text; `gauges` adds point-in-time series computed by the caller
    /// (open circuits per provider, accounts per status, ...), as (name, help, samples).
    pub fn render(&self, gauges: &[Gauge<'_>]) -> String {
        let mut out = String::new();
        let Ok(m) = self.inner.lock() else {
            return out;
        };
        family(
            &mut out,
            "tessera_upstream_calls_total",
            "counter",
            "Upstream call attempts by provider and outcome (ok or the error class).",
        );
        for ((p, o), n) in &m.calls {
            let _ = writeln!(
                out,
                "tessera_upstream_calls_total{{provider=\"{p}\",outcome=\"{o}\"}} {n}"
            );
        }
        family(
            &mut out,
            "tessera_upstream_latency_seconds",
            "histogram",
            "Upstream call attempt latency.",
        );
        for (p, h) in &m.latency {
            for (i, le) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "tessera_upstream_latency_seconds_bucket{{provider=\"{p}\",le=\"{le}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "tessera_upstream_latency_seconds_bucket{{provider=\"{p}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "tessera_upstream_latency_seconds_sum{{provider=\"{p}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "tessera_upstream_latency_seconds_count{{provider=\"{p}\"}} {}",
                h.count
            );
        }
        family(
            &mut out,
            "tessera_rate_limited_total",
            "counter",
            "Upstream calls the vendor throttled.",
        );
        for (p, n) in &m.rate_limited {
            let _ = writeln!(out, "tessera_rate_limited_total{{provider=\"{p}\"}} {n}");
        }
        family(
            &mut out,
            "tessera_upstream_retries_total",
            "counter",
            "Retried upstream attempts.",
        );
        for (p, n) in &m.retries {
            let _ = writeln!(
                out,
                "tessera_upstream_retries_total{{provider=\"{p}\"}} {n}"
            );
        }
        family(
            &mut out,
            "tessera_circuit_transitions_total",
            "counter",
            "Circuit breaker openings and closings.",
        );
        for ((p, to), n) in &m.breaker {
            let _ = writeln!(
                out,
                "tessera_circuit_transitions_total{{provider=\"{p}\",to=\"{to}\"}} {n}"
            );
        }
        family(
            &mut out,
            "tessera_request_log_dropped_total",
            "counter",
            "Request-log entries dropped because the writer fell behind.",
        );
        let _ = writeln!(out, "tessera_request_log_dropped_total {}", m.log_dropped);
        for Gauge {
            name,
            help,
            kind,
            samples,
        } in gauges
        {
            family(&mut out, name, kind, help);
            for (labels, v) in samples {
                let _ = writeln!(out, "{name}{{{labels}}} {v}");
            }
        }
        out
    }
}
