//! The script of a simulated day against these vendors, for the gateway's `simulate`
//! command: which accounts to link, the ordinary noise of a healthy day, and for each
//! symptom of the integration-failure checklist the control calls that inject it at a
//! known time and heal it afterwards. The gateway runs the script generically (its clock,
//! its watcher, its report); what each vendor looks like when it breaks is known here.

use serde_json::{Value, json};

use super::{
    HUBSPOT_CLIENT_ID, HUBSPOT_CLIENT_SECRET, HUBSPOT_DEMO_TOKEN, MSGRAPH_CLIENT_ID,
    MSGRAPH_CLIENT_SECRET, PIPEDRIVE_CLIENT_ID, PIPEDRIVE_CLIENT_SECRET,
};

/// One call to the sandbox's control API (`/_control/{path}`).
#[derive(Debug, Clone, PartialEq)]
pub struct Control {
    pub method: &'static str,
    pub path: String,
    pub body: Value,
}

impl Control {
    fn post(path: &str, body: Value) -> Control {
        Control {
            method: "POST",
            path: path.to_owned(),
            body,
        }
    }
}

/// An OAuth app the environment uses for a provider (to refresh its grants).
#[derive(Debug, Clone, PartialEq)]
pub struct App {
    pub provider: &'static str,
    pub client_id: &'static str,
    pub client_secret: &'static str,
}

/// A linked account of the script.
#[derive(Debug, Clone, PartialEq)]
pub struct Cast {
    pub provider: &'static str,
    /// Linked with a fresh OAuth grant (a refresh token) from the sandbox's token
    /// endpoint at this path, instead of the demo account's fixed token.
    pub grant_token_path: Option<&'static str>,
    /// Reached through a forwarder the script can cut (a firewall change).
    pub through_relay: bool,
    /// The vendor changes one of its records every day-time minute, and sends the
    /// webhook (the touch path: `webhooks/{provider}/touch`).
    pub changes: Option<String>,
}

impl Cast {
    fn plain(provider: &'static str) -> Cast {
        Cast {
            provider,
            grant_token_path: None,
            through_relay: false,
            changes: None,
        }
    }

    fn changing(provider: &'static str) -> Cast {
        Cast {
            changes: Some(format!("webhooks/{provider}/touch")),
            ..Cast::plain(provider)
        }
    }
}

/// What the script does at a point of a scene.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Control(Control),
    /// Revokes the scene account's refresh token and every access token issued from it
    /// (an IT admin's conditional-access policy).
    RevokeGrant,
    /// Cuts the forwarder: open connections drop, new ones are refused.
    CutRelay,
    /// Another integration on the customer's account spends quota: `times` GETs of
    /// `path` (below the sandbox's base URL) with `token`.
    Spend {
        path: &'static str,
        token: &'static str,
        times: u32,
    },
    /// The vendor stops delivering the scene account's webhooks (they are dropped, not
    /// sent), or starts again.
    DropWebhooks(bool),
}

/// One symptom of the checklist.
#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    /// The checklist's symptom, in its words.
    pub symptom: &'static str,
    /// The alert kind that should open.
    pub expected: &'static str,
    pub cast: Cast,
    pub inject: Vec<Action>,
    pub heal: Vec<Action>,
}

/// The healthy day's noise: control calls at minutes of the day.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthyDay {
    pub cast: Vec<Cast>,
    pub noise: Vec<(i64, Control)>,
    /// The vendor changes nothing from this hour to that one.
    pub quiet_hours: (i64, i64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    pub apps: Vec<App>,
    /// Run first, and again after every scene.
    pub setup: Vec<Control>,
    pub healthy: HealthyDay,
    pub scenes: Vec<Scene>,
}

const CONTACTS: &str = "/objects/contacts";

fn fault(body: Value) -> Action {
    Action::Control(Control::post("faults", body))
}

pub fn script() -> Script {
    let providers = ["hubspot", "msgraph", "pipedrive"];
    Script {
        apps: vec![
            App {
                provider: "hubspot",
                client_id: HUBSPOT_CLIENT_ID,
                client_secret: HUBSPOT_CLIENT_SECRET,
            },
            App {
                provider: "msgraph",
                client_id: MSGRAPH_CLIENT_ID,
                client_secret: MSGRAPH_CLIENT_SECRET,
            },
            App {
                provider: "pipedrive",
                client_id: PIPEDRIVE_CLIENT_ID,
                client_secret: PIPEDRIVE_CLIENT_SECRET,
            },
        ],
        // The sandbox's rate limits count real seconds, and a simulated minute takes a
        // few milliseconds: the ordinary limits would throttle an ordinary day.
        // Throttling is a scene of its own.
        setup: providers
            .iter()
            .map(|p| {
                Control::post(
                    "ratelimit",
                    json!({"provider": p, "max": 1_000_000, "intervalMs": 1000}),
                )
            })
            .chain(std::iter::once(Control {
                method: "DELETE",
                path: "faults".into(),
                body: Value::Null,
            }))
            .collect(),
        healthy: HealthyDay {
            cast: vec![Cast::plain("hubspot"), Cast::changing("pipedrive")],
            noise: vec![
                // One 503 at 10:00, answered at the retry.
                (
                    10 * 60,
                    Control::post(
                        "faults",
                        json!({"provider": "hubspot", "status": 503, "times": 1, "pathContains": CONTACTS}),
                    ),
                ),
                // One slow answer at 14:00.
                (
                    14 * 60,
                    Control::post(
                        "faults",
                        json!({"provider": "hubspot", "delayMs": 1500, "times": 1, "pathContains": CONTACTS}),
                    ),
                ),
            ],
            quiet_hours: (22, 6),
        },
        scenes: vec![
            Scene {
                symptom: "401 Unauthorized or invalid_grant",
                expected: "TOKEN_REVOKED",
                cast: Cast {
                    grant_token_path: Some("/graph/common/oauth2/v2.0/token"),
                    ..Cast::plain("msgraph")
                },
                inject: vec![Action::RevokeGrant],
                heal: vec![],
            },
            Scene {
                symptom: "429 Too Many Requests",
                expected: "RATE_LIMITED",
                cast: Cast::plain("hubspot"),
                inject: vec![
                    Action::Control(Control::post(
                        "ratelimit",
                        json!({"provider": "hubspot", "max": 10, "intervalMs": 600_000}),
                    )),
                    Action::Spend {
                        path: "/hubspot/crm/v3/objects/contacts?limit=1",
                        token: HUBSPOT_DEMO_TOKEN,
                        times: 10,
                    },
                ],
                heal: vec![],
            },
            Scene {
                symptom: "404 Not Found on a working endpoint",
                expected: "ENDPOINT_GONE",
                cast: Cast::plain("hubspot"),
                inject: vec![fault(
                    json!({"provider": "hubspot", "status": 404, "times": 100_000, "method": "GET", "pathContains": CONTACTS}),
                )],
                heal: vec![],
            },
            Scene {
                symptom: "200 OK with missing or malformed fields",
                expected: "SCHEMA_DRIFT",
                cast: Cast::plain("hubspot"),
                inject: vec![fault(
                    json!({"provider": "hubspot", "kind": "reshape", "renameKeys": {"email": "email_address"}, "times": 100_000, "pathContains": CONTACTS}),
                )],
                heal: vec![],
            },
            Scene {
                symptom: "502 Bad Gateway / 503 Service Unavailable",
                expected: "UPSTREAM_DOWN",
                cast: Cast::plain("hubspot"),
                inject: vec![fault(
                    json!({"provider": "hubspot", "status": 502, "times": 100_000, "pathContains": CONTACTS}),
                )],
                heal: vec![],
            },
            Scene {
                symptom: "Connection timeout or TLS handshake failure",
                expected: "NETWORK_FAILURE",
                cast: Cast {
                    through_relay: true,
                    ..Cast::plain("hubspot")
                },
                inject: vec![Action::CutRelay],
                heal: vec![],
            },
            Scene {
                symptom: "Sync completes but record count drops",
                expected: "RECORD_COUNT_DROP",
                cast: Cast::plain("hubspot"),
                // The vendor stops sending its cursor: every listing ends after a page.
                inject: vec![fault(
                    json!({"provider": "hubspot", "kind": "reshape", "dropKeys": ["paging"], "times": 100_000, "pathContains": CONTACTS}),
                )],
                heal: vec![],
            },
            Scene {
                symptom: "Webhook events stop arriving",
                expected: "WEBHOOKS_SILENT",
                cast: Cast::changing("pipedrive"),
                inject: vec![Action::DropWebhooks(true)],
                heal: vec![Action::DropWebhooks(false)],
            },
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scene_names_a_symptom_and_a_kind_once() {
        let s = script();
        assert_eq!(s.scenes.len(), 8, "the checklist's eight symptoms");
        let mut kinds: Vec<&str> = s.scenes.iter().map(|s| s.expected).collect();
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds.len(), 8);
        assert!(s.scenes.iter().all(|s| !s.inject.is_empty()));
    }
}
