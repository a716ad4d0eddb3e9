//! The simulated day (`tessera simulate`): every symptom of the diagnostic checklist,
//! injected into the sandbox at a known virtual time, is caught within 5 simulated minutes
//! with the right kind and diagnosis; the seed's incident (a revoked Microsoft refresh
//! token, the background sync getting nothing) fires before T+5 min and `diagnose` says
//! re-authorize; a healthy day of 24 hours with ordinary noise raises no alert.

use crate::common::repo_path;

#[tokio::test]
async fn a_simulated_day_catches_every_symptom_within_five_minutes_and_no_false_alert() {
    let report =
        tessera::cli::simulate::simulate(&repo_path("providers"), &repo_path("schema"), 24)
            .await
            .unwrap();
    let table = report.table();
    println!("{table}");
    assert_eq!(report.scenes.len(), 8, "{table}");
    for s in &report.scenes {
        assert_eq!(
            s.detected.as_deref(),
            Some(s.expected),
            "{}: {table}",
            s.symptom
        );
        let after = s.detected_after.unwrap();
        assert!(
            after <= chrono::Duration::minutes(5),
            "{}: after {after}: {table}",
            s.symptom
        );
        assert!(
            s.early_alerts.is_empty(),
            "{}: alerts before the fault: {:?}",
            s.symptom,
            s.early_alerts
        );
        assert_eq!(s.diagnosis, s.expected, "{}: diagnose: {table}", s.symptom);
    }
    let incident = report
        .scenes
        .iter()
        .find(|s| s.expected == "TOKEN_REVOKED")
        .unwrap();
    assert!(
        incident.first_response.contains("re-authorize"),
        "{}",
        incident.first_response
    );
    assert!(
        report.healthy_day_alerts.is_empty(),
        "false alerts on a healthy day: {:?}",
        report.healthy_day_alerts
    );
    // What the playbook escalates: a confirmed schema change and a moved endpoint.
    let escalated: Vec<&str> = report
        .scenes
        .iter()
        .filter(|s| s.escalate)
        .map(|s| s.expected)
        .collect();
    assert_eq!(escalated, ["ENDPOINT_GONE", "SCHEMA_DRIFT"], "{table}");
}
