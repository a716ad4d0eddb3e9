//! The Pipedrive sandbox's records: a deterministic seed, identical on every start and
//! after `/_control/reset`, and the rendering of each record exactly as the API returns it.
//! API v2 serves persons, organizations, deals, activities and pipelines (stages are seed
//! data the deals point at); API v1 still serves notes, users and leads, in v1 shapes
//! ("YYYY-MM-DD HH:MM:SS" UTC times, related objects inlined on notes).
//!
//! Links are consistent: a deal's organization is its person's organization, a note or an
//! activity on a deal carries that deal's person and organization, a lead's organization
//! is its person's.
//!
//! Custom fields live under `custom_fields`, keyed by 40-hex-character hashes, with
//! every defined key present (`null` when unset) as v2 does. The company has one person
//! custom field (customer tier, text) and two organization custom fields (employee count,
//! numeric; industry, text).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, SecondsFormat, TimeZone, Utc};
use serde_json::{Map, Value, json};

pub(crate) const PERSON_COUNT: u64 = 260;
pub(crate) const FIRST_PERSON_ID: u64 = 1;
pub(crate) const ORG_COUNT: u64 = 261;
/// Organizations live in their own id range so that a person id used as an organization
/// id (or the reverse) is a 404 rather than a silent wrong answer.
pub(crate) const FIRST_ORG_ID: u64 = 1001;

/// Person custom field "Customer tier" (text).
pub(crate) const PERSON_TIER_KEY: &str = "5f2a9c3e8b1d4f6a7c0e2b4d6f8a1c3e5b7d9f02";
/// Organization custom field "Number of employees" (numeric).
pub(crate) const ORG_EMPLOYEES_KEY: &str = "c1e8a3b5d7f9024680ace13579bdf02468ace135";
/// Organization custom field "Industry" (text).
pub(crate) const ORG_INDUSTRY_KEY: &str = "9b0d2f4a6c8e1a3c5e7f9b1d3f5a7c9e0b2d4f61";

/// Active users of the sandbox company (`owner_id` values).
pub(crate) const OWNER_IDS: [u64; 3] = [13_294_001, 13_294_002, 13_294_003];
/// A deactivated user: still listed by `/v1/users`, owns nothing.
pub(crate) const FORMER_USER_ID: u64 = 13_294_004;

pub(crate) const DEAL_COUNT: u64 = 260;
pub(crate) const FIRST_DEAL_ID: u64 = 5001;
pub(crate) const ACTIVITY_COUNT: u64 = 300;
pub(crate) const FIRST_ACTIVITY_ID: u64 = 20_001;
pub(crate) const NOTE_COUNT: u64 = 260;
pub(crate) const FIRST_NOTE_ID: u64 = 1;
pub(crate) const LEAD_COUNT: u64 = 260;
/// The company's default currency (new deals without `currency` get it).
pub(crate) const DEFAULT_CURRENCY: &str = "EUR";
/// The activity types of the sandbox company (`key_string`s of `/v1/activityTypes`).
pub(crate) const ACTIVITY_TYPES: [&str; 6] =
    ["call", "meeting", "task", "deadline", "email", "lunch"];

/// The `address` subfields of an organization, in v2's order.
pub(crate) const ADDRESS_PARTS: [&str; 9] = [
    "value",
    "country",
    "admin_area_level_1",
    "admin_area_level_2",
    "locality",
    "sublocality",
    "route",
    "street_number",
    "postal_code",
];

/// The API v2 entities (cursor-paginated, `/api/v2/<path>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Entity {
    Persons,
    Organizations,
    Deals,
    Activities,
    Pipelines,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CustomKind {
    Text,
    Number,
}

impl Entity {
    pub(crate) const ALL: [Entity; 5] = [
        Entity::Persons,
        Entity::Organizations,
        Entity::Deals,
        Entity::Activities,
        Entity::Pipelines,
    ];

    pub(crate) fn path(self) -> &'static str {
        match self {
            Entity::Persons => "persons",
            Entity::Organizations => "organizations",
            Entity::Deals => "deals",
            Entity::Activities => "activities",
            Entity::Pipelines => "pipelines",
        }
    }

    /// As Pipedrive names the entity in messages ("Person not found").
    pub(crate) fn singular(self) -> &'static str {
        match self {
            Entity::Persons => "Person",
            Entity::Organizations => "Organization",
            Entity::Deals => "Deal",
            Entity::Activities => "Activity",
            Entity::Pipelines => "Pipeline",
        }
    }

    fn index(self) -> usize {
        match self {
            Entity::Persons => 0,
            Entity::Organizations => 1,
            Entity::Deals => 2,
            Entity::Activities => 3,
            Entity::Pipelines => 4,
        }
    }

    /// Whether the entity has a `custom_fields` object (activities and pipelines do not).
    pub(crate) fn has_custom_fields(self) -> bool {
        matches!(
            self,
            Entity::Persons | Entity::Organizations | Entity::Deals
        )
    }

    pub(crate) fn custom_fields(self) -> &'static [(&'static str, CustomKind)] {
        match self {
            Entity::Persons => &[(PERSON_TIER_KEY, CustomKind::Text)],
            Entity::Organizations => &[
                (ORG_EMPLOYEES_KEY, CustomKind::Number),
                (ORG_INDUSTRY_KEY, CustomKind::Text),
            ],
            Entity::Deals | Entity::Activities | Entity::Pipelines => &[],
        }
    }

    pub(crate) fn custom_kind(self, key: &str) -> Option<CustomKind> {
        self.custom_fields()
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, kind)| *kind)
    }
}

/// One email or phone entry.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Channel {
    pub value: String,
    pub primary: bool,
    pub label: String,
}

impl Channel {
    fn render(&self) -> Value {
        json!({ "value": self.value, "primary": self.primary, "label": self.label })
    }
}

/// A deal's own fields.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct DealFields {
    pub person_id: Option<u64>,
    pub pipeline_id: u64,
    pub stage_id: u64,
    pub value: f64,
    pub currency: String,
    /// `open`, `won` or `lost`.
    pub status: String,
    /// Percent, 0..=100, or unset.
    pub probability: Option<f64>,
    pub lost_reason: Option<String>,
    pub expected_close_date: Option<NaiveDate>,
    pub close_time: Option<DateTime<Utc>>,
    pub won_time: Option<DateTime<Utc>>,
    pub lost_time: Option<DateTime<Utc>>,
    pub stage_change_time: Option<DateTime<Utc>>,
}

/// An activity's own fields (v2 `ActivityItem`).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ActivityFields {
    /// `type`: one of `ACTIVITY_TYPES`.
    pub kind: String,
    pub deal_id: Option<u64>,
    pub lead_id: Option<String>,
    /// The primary participant.
    pub person_id: Option<u64>,
    pub due_date: Option<NaiveDate>,
    /// `HH:MM`, UTC.
    pub due_time: Option<String>,
    /// `HH:MM`.
    pub duration: Option<String>,
    pub busy: bool,
    pub done: bool,
    pub marked_as_done_time: Option<DateTime<Utc>>,
    pub note: Option<String>,
    pub public_description: Option<String>,
    pub priority: Option<u64>,
}

/// A pipeline's own fields.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PipelineFields {
    pub order_nr: u64,
    pub is_deal_probability_enabled: bool,
}

/// What a record is beyond the fields every v2 entity shares.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Extra {
    /// Persons and organizations.
    None,
    Deal(DealFields),
    Activity(ActivityFields),
    Pipeline(PipelineFields),
}

/// A stage of a pipeline (served by `/api/v2/stages`, which the sandbox does not expose:
/// deals point at them).
#[derive(Clone, Debug)]
pub(crate) struct Stage {
    pub id: u64,
    pub pipeline_id: u64,
    pub name: String,
    pub order_nr: u64,
    pub deal_probability: u64,
}

/// A v2 record: a person, an organization, a deal (`name` is its title), an activity
/// (`name` is its subject) or a pipeline; the fields that belong to another entity stay
/// empty.
#[derive(Clone, Debug)]
pub(crate) struct Record {
    pub id: u64,
    pub name: String,
    pub owner_id: u64,
    /// Persons only.
    pub org_id: Option<u64>,
    pub emails: Vec<Channel>,
    pub phones: Vec<Channel>,
    /// Organizations only: every `ADDRESS_PARTS` key, `null` where unknown.
    pub address: Option<Map<String, Value>>,
    pub add_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    pub visible_to: u64,
    pub label_ids: Vec<u64>,
    /// Set custom fields only; rendering adds the unset ones as `null`.
    pub custom: BTreeMap<String, Value>,
    pub deleted: bool,
    pub extra: Extra,
}

impl Record {
    /// An empty record of `entity` created at `now` (writes fill it in).
    pub(crate) fn blank(id: u64, now: DateTime<Utc>, extra: Extra) -> Record {
        Record {
            id,
            name: String::new(),
            owner_id: OWNER_IDS[0],
            org_id: None,
            emails: Vec::new(),
            phones: Vec::new(),
            address: None,
            add_time: now,
            update_time: now,
            visible_to: 3,
            label_ids: Vec::new(),
            custom: BTreeMap::new(),
            deleted: false,
            extra,
        }
    }

    pub(crate) fn deal(&self) -> Option<&DealFields> {
        match &self.extra {
            Extra::Deal(d) => Some(d),
            _ => None,
        }
    }

    pub(crate) fn activity(&self) -> Option<&ActivityFields> {
        match &self.extra {
            Extra::Activity(a) => Some(a),
            _ => None,
        }
    }
}

/// v1 timestamps: "YYYY-MM-DD HH:MM:SS", UTC.
pub(crate) fn v1_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// Dates (`due_date`, `expected_close_date`): "YYYY-MM-DD".
pub(crate) fn date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// v2 timestamps: RFC 3339, whole seconds, `Z`.
pub(crate) fn v2_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Pipedrive derives first and last name from `name`: the first word, then the rest.
pub(crate) fn split_name(name: &str) -> (Option<String>, Option<String>) {
    let trimmed = name.trim();
    match trimmed.split_once(char::is_whitespace) {
        Some((first, rest)) => (
            Some(first.to_owned()),
            Some(rest.trim().to_owned()).filter(|r| !r.is_empty()),
        ),
        None => (Some(trimmed.to_owned()).filter(|f| !f.is_empty()), None),
    }
}

impl Record {
    /// The record as v2 returns it. `custom_keys` limits `custom_fields` to the given keys
    /// (the `custom_fields` query parameter); `None` renders every defined key.
    pub(crate) fn render(&self, entity: Entity, custom_keys: Option<&[String]>) -> Value {
        let mut custom = Map::new();
        for (key, _) in entity.custom_fields() {
            if custom_keys.is_some_and(|wanted| !wanted.iter().any(|w| w == key)) {
                continue;
            }
            let value = self.custom.get(*key).cloned().unwrap_or(Value::Null);
            custom.insert((*key).to_owned(), value);
        }
        let mut out = Map::new();
        out.insert("id".into(), json!(self.id));
        out.insert("name".into(), json!(self.name));
        match entity {
            Entity::Persons => {
                let (first, last) = split_name(&self.name);
                out.insert("first_name".into(), json!(first));
                out.insert("last_name".into(), json!(last));
                out.insert("owner_id".into(), json!(self.owner_id));
                out.insert("org_id".into(), json!(self.org_id));
                out.insert("add_time".into(), json!(v2_time(self.add_time)));
                out.insert("update_time".into(), json!(v2_time(self.update_time)));
                out.insert(
                    "emails".into(),
                    Value::Array(self.emails.iter().map(Channel::render).collect()),
                );
                out.insert(
                    "phones".into(),
                    Value::Array(self.phones.iter().map(Channel::render).collect()),
                );
                out.insert("is_deleted".into(), json!(self.deleted));
                out.insert("visible_to".into(), json!(self.visible_to));
                out.insert("label_ids".into(), json!(self.label_ids));
                out.insert("picture_id".into(), Value::Null);
            }
            Entity::Organizations => {
                out.insert("owner_id".into(), json!(self.owner_id));
                out.insert("add_time".into(), json!(v2_time(self.add_time)));
                out.insert("update_time".into(), json!(v2_time(self.update_time)));
                out.insert("is_deleted".into(), json!(self.deleted));
                out.insert("visible_to".into(), json!(self.visible_to));
                out.insert(
                    "address".into(),
                    self.address.clone().map_or(Value::Null, Value::Object),
                );
                out.insert("label_ids".into(), json!(self.label_ids));
            }
            Entity::Deals => {
                out.remove("name");
                out.insert("title".into(), json!(self.name));
                if let Some(d) = self.deal() {
                    render_deal(&mut out, self, d);
                }
            }
            Entity::Activities => {
                out.remove("name");
                if let Some(a) = self.activity() {
                    render_activity(&mut out, self, a);
                }
            }
            Entity::Pipelines => {
                if let Extra::Pipeline(p) = &self.extra {
                    out.insert("order_nr".into(), json!(p.order_nr));
                    out.insert("is_deleted".into(), json!(self.deleted));
                    out.insert(
                        "is_deal_probability_enabled".into(),
                        json!(p.is_deal_probability_enabled),
                    );
                    out.insert("add_time".into(), json!(v2_time(self.add_time)));
                    out.insert("update_time".into(), json!(v2_time(self.update_time)));
                    out.insert("is_selected".into(), json!(p.order_nr == 1));
                }
            }
        }
        if entity.has_custom_fields() {
            out.insert("custom_fields".into(), Value::Object(custom));
        }
        Value::Object(out)
    }
}

fn opt_time(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| json!(v2_time(t)))
}

fn render_deal(out: &mut Map<String, Value>, r: &Record, d: &DealFields) {
    out.insert("creator_user_id".into(), json!(r.owner_id));
    out.insert("owner_id".into(), json!(r.owner_id));
    out.insert("person_id".into(), json!(d.person_id));
    out.insert("org_id".into(), json!(r.org_id));
    out.insert("stage_id".into(), json!(d.stage_id));
    out.insert("pipeline_id".into(), json!(d.pipeline_id));
    out.insert("value".into(), json!(d.value));
    out.insert("currency".into(), json!(d.currency));
    out.insert("add_time".into(), json!(v2_time(r.add_time)));
    out.insert("update_time".into(), json!(v2_time(r.update_time)));
    out.insert("stage_change_time".into(), opt_time(d.stage_change_time));
    out.insert("is_deleted".into(), json!(r.deleted));
    out.insert("is_archived".into(), json!(false));
    out.insert("archive_time".into(), Value::Null);
    out.insert("status".into(), json!(d.status));
    out.insert("probability".into(), json!(d.probability));
    out.insert("lost_reason".into(), json!(d.lost_reason));
    out.insert("visible_to".into(), json!(r.visible_to));
    out.insert("close_time".into(), opt_time(d.close_time));
    out.insert("won_time".into(), opt_time(d.won_time));
    out.insert("lost_time".into(), opt_time(d.lost_time));
    out.insert(
        "expected_close_date".into(),
        d.expected_close_date
            .map_or(Value::Null, |x| json!(date(x))),
    );
    out.insert("label_ids".into(), json!(r.label_ids));
    out.insert("origin".into(), json!("ManuallyCreated"));
    out.insert("origin_id".into(), Value::Null);
    out.insert("channel".into(), Value::Null);
    out.insert("channel_id".into(), Value::Null);
    out.insert("acv".into(), Value::Null);
    out.insert("arr".into(), Value::Null);
    out.insert("mrr".into(), Value::Null);
}

fn render_activity(out: &mut Map<String, Value>, r: &Record, a: &ActivityFields) {
    out.insert("subject".into(), json!(r.name));
    out.insert("type".into(), json!(a.kind));
    out.insert("owner_id".into(), json!(r.owner_id));
    out.insert("creator_user_id".into(), json!(r.owner_id));
    out.insert("is_deleted".into(), json!(r.deleted));
    out.insert("add_time".into(), json!(v2_time(r.add_time)));
    out.insert("update_time".into(), json!(v2_time(r.update_time)));
    out.insert("deal_id".into(), json!(a.deal_id));
    out.insert("lead_id".into(), json!(a.lead_id));
    out.insert("person_id".into(), json!(a.person_id));
    out.insert("org_id".into(), json!(r.org_id));
    out.insert("project_id".into(), Value::Null);
    out.insert(
        "due_date".into(),
        a.due_date.map_or(Value::Null, |x| json!(date(x))),
    );
    out.insert("due_time".into(), json!(a.due_time));
    out.insert("duration".into(), json!(a.duration));
    out.insert("busy".into(), json!(a.busy));
    out.insert("done".into(), json!(a.done));
    out.insert(
        "marked_as_done_time".into(),
        opt_time(a.marked_as_done_time),
    );
    out.insert("location".into(), Value::Null);
    out.insert(
        "participants".into(),
        match a.person_id {
            Some(p) => json!([{ "person_id": p, "primary": true }]),
            None => json!([]),
        },
    );
    out.insert("conference_meeting_client".into(), Value::Null);
    out.insert("conference_meeting_url".into(), Value::Null);
    out.insert("conference_meeting_id".into(), Value::Null);
    out.insert("public_description".into(), json!(a.public_description));
    out.insert("priority".into(), json!(a.priority));
    out.insert("note".into(), json!(a.note));
}

// ---------------------------------------------------------------------------------------
// API v1 records: notes, users, leads

/// A v1 user (`/v1/users`). Pipedrive keeps one `name`: there are no separate given and
/// family names.
#[derive(Clone, Debug)]
pub(crate) struct User {
    pub id: u64,
    pub name: String,
    pub email: String,
    pub active_flag: bool,
    pub is_admin: bool,
    pub created: DateTime<Utc>,
    pub modified: DateTime<Utc>,
    pub last_login: Option<DateTime<Utc>>,
    pub timezone_name: &'static str,
}

impl User {
    pub(crate) fn render(&self, you: u64) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "default_currency": DEFAULT_CURRENCY,
            "locale": "en_US",
            "lang": 1,
            "email": self.email,
            "phone": null,
            "activated": self.active_flag,
            "last_login": self.last_login.map(v1_time),
            "created": v1_time(self.created),
            "modified": v1_time(self.modified),
            "has_created_company": self.id == OWNER_IDS[0],
            "access": [{ "app": "sales", "admin": self.is_admin, "permission_set_id": "6d1d0e80-0b8a-11eb-9f2b-7b5b8cbd2e3c" }],
            "active_flag": self.active_flag,
            "timezone_name": self.timezone_name,
            "timezone_offset": "+00:00",
            "role_id": 1,
            "icon_url": null,
            "is_you": self.id == you,
            "is_admin": u8::from(self.is_admin),
        })
    }
}

/// A v1 note. `content` is HTML, as Pipedrive's editor stores it.
#[derive(Clone, Debug)]
pub(crate) struct Note {
    pub id: u64,
    pub user_id: u64,
    pub deal_id: Option<u64>,
    pub person_id: Option<u64>,
    pub org_id: Option<u64>,
    pub lead_id: Option<String>,
    pub content: String,
    pub add_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    pub last_update_user_id: Option<u64>,
}

impl Note {
    /// As `/v1/notes` returns it: the related deal, person, organization and user inlined.
    pub(crate) fn render(&self, store: &Store) -> Value {
        let named = |entity: Entity, id: Option<u64>, key: &str| {
            id.and_then(|id| store.table(entity).get(&id))
                .map_or(Value::Null, |r| json!({ key: r.name }))
        };
        let user = store.users.get(&self.user_id).map_or(Value::Null, |u| {
            json!({ "email": u.email, "name": u.name, "icon_url": null, "is_you": u.id == OWNER_IDS[0] })
        });
        let lead = self
            .lead_id
            .as_ref()
            .and_then(|id| store.leads.get(id))
            .map_or(Value::Null, |l| json!({ "title": l.title }));
        json!({
            "id": self.id,
            "user_id": self.user_id,
            "deal_id": self.deal_id,
            "person_id": self.person_id,
            "org_id": self.org_id,
            "lead_id": self.lead_id,
            "project_id": null,
            "content": self.content,
            "add_time": v1_time(self.add_time),
            "update_time": v1_time(self.update_time),
            "active_flag": true,
            "pinned_to_deal_flag": false,
            "pinned_to_person_flag": false,
            "pinned_to_organization_flag": false,
            "pinned_to_lead_flag": false,
            "pinned_to_project_flag": false,
            "last_update_user_id": self.last_update_user_id,
            "organization": named(Entity::Organizations, self.org_id, "name"),
            "person": named(Entity::Persons, self.person_id, "name"),
            "deal": named(Entity::Deals, self.deal_id, "title"),
            "lead": lead,
            "user": user,
        })
    }
}

/// A v1 lead (`/v1/leads`): ids are UUIDs, times RFC 3339 with milliseconds. A lead holds
/// no name, email or phone of its own: those are on the person or organization it links.
#[derive(Clone, Debug)]
pub(crate) struct Lead {
    pub id: String,
    pub title: String,
    pub owner_id: u64,
    pub creator_id: u64,
    pub label_ids: Vec<String>,
    pub person_id: Option<u64>,
    pub organization_id: Option<u64>,
    pub source_name: &'static str,
    pub origin: &'static str,
    pub is_archived: bool,
    pub was_seen: bool,
    /// `(amount, currency)`.
    pub value: Option<(f64, String)>,
    pub expected_close_date: Option<NaiveDate>,
    pub add_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
}

fn v1_millis(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl Lead {
    pub(crate) fn render(&self) -> Value {
        json!({
            "id": self.id,
            "title": self.title,
            "owner_id": self.owner_id,
            "creator_id": self.creator_id,
            "label_ids": self.label_ids,
            "person_id": self.person_id,
            "organization_id": self.organization_id,
            "source_name": self.source_name,
            "origin": self.origin,
            "origin_id": null,
            "channel": null,
            "channel_id": null,
            "is_archived": self.is_archived,
            "was_seen": self.was_seen,
            "value": self.value.as_ref().map(|(amount, currency)| json!({ "amount": amount, "currency": currency })),
            "expected_close_date": self.expected_close_date.map(date),
            "next_activity_id": null,
            "add_time": v1_millis(self.add_time),
            "update_time": v1_millis(self.update_time),
            "visible_to": "3",
            "cc_email": format!("sandbox+lead{}@pipedrivemail.com", &self.id[..8]),
        })
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Store {
    persons: BTreeMap<u64, Record>,
    organizations: BTreeMap<u64, Record>,
    deals: BTreeMap<u64, Record>,
    activities: BTreeMap<u64, Record>,
    pipelines: BTreeMap<u64, Record>,
    /// Next id per v2 entity (`Entity::index`).
    next_ids: [u64; 5],
    pub(crate) stages: Vec<Stage>,
    pub(crate) users: BTreeMap<u64, User>,
    pub(crate) notes: BTreeMap<u64, Note>,
    pub(crate) next_note_id: u64,
    pub(crate) leads: BTreeMap<String, Lead>,
}

impl Store {
    pub(crate) fn table(&self, entity: Entity) -> &BTreeMap<u64, Record> {
        match entity {
            Entity::Persons => &self.persons,
            Entity::Organizations => &self.organizations,
            Entity::Deals => &self.deals,
            Entity::Activities => &self.activities,
            Entity::Pipelines => &self.pipelines,
        }
    }

    pub(crate) fn table_mut(&mut self, entity: Entity) -> &mut BTreeMap<u64, Record> {
        match entity {
            Entity::Persons => &mut self.persons,
            Entity::Organizations => &mut self.organizations,
            Entity::Deals => &mut self.deals,
            Entity::Activities => &mut self.activities,
            Entity::Pipelines => &mut self.pipelines,
        }
    }

    /// Live (not deleted) record by id.
    pub(crate) fn live(&self, entity: Entity, id: u64) -> Option<&Record> {
        self.table(entity).get(&id).filter(|r| !r.deleted)
    }

    /// Ids are never reused, even after a delete.
    pub(crate) fn allocate_id(&mut self, entity: Entity) -> u64 {
        let next = &mut self.next_ids[entity.index()];
        let id = *next;
        *next = next.saturating_add(1);
        id
    }

    pub(crate) fn stage(&self, id: u64) -> Option<&Stage> {
        self.stages
            .iter()
            .find(|s| s.id == id && self.live(Entity::Pipelines, s.pipeline_id).is_some())
    }

    /// The first stage of a pipeline (where a deal lands when only the pipeline is named).
    pub(crate) fn first_stage(&self, pipeline_id: u64) -> Option<&Stage> {
        self.stages
            .iter()
            .filter(|s| s.pipeline_id == pipeline_id)
            .min_by_key(|s| s.order_nr)
    }

    pub(crate) fn seed() -> Store {
        let organizations: BTreeMap<u64, Record> =
            (0..ORG_COUNT).map(seed_org).map(|r| (r.id, r)).collect();
        let persons: BTreeMap<u64, Record> = (0..PERSON_COUNT)
            .map(|i| seed_person(i, &organizations))
            .map(|r| (r.id, r))
            .collect();
        let pipelines: BTreeMap<u64, Record> = PIPELINES
            .iter()
            .enumerate()
            .map(|(i, p)| seed_pipeline(i, p))
            .map(|r| (r.id, r))
            .collect();
        let stages = seed_stages();
        let deals: BTreeMap<u64, Record> = (0..DEAL_COUNT)
            .map(|i| seed_deal(i, &persons, &organizations, &stages))
            .map(|r| (r.id, r))
            .collect();
        let activities: BTreeMap<u64, Record> = (0..ACTIVITY_COUNT)
            .map(|i| seed_activity(i, &persons, &deals))
            .map(|r| (r.id, r))
            .collect();
        let users = seed_users();
        let leads: BTreeMap<String, Lead> = (0..LEAD_COUNT)
            .map(|i| seed_lead(i, &persons, &organizations))
            .map(|l| (l.id.clone(), l))
            .collect();
        let notes: BTreeMap<u64, Note> = (0..NOTE_COUNT)
            .map(|i| seed_note(i, &persons, &deals))
            .map(|n| (n.id, n))
            .collect();
        let next_pipeline = pipelines.keys().max().copied().unwrap_or(0) + 1;
        Store {
            persons,
            organizations,
            deals,
            activities,
            pipelines,
            next_ids: [
                FIRST_PERSON_ID + PERSON_COUNT,
                FIRST_ORG_ID + ORG_COUNT,
                FIRST_DEAL_ID + DEAL_COUNT,
                FIRST_ACTIVITY_ID + ACTIVITY_COUNT,
                next_pipeline,
            ],
            stages,
            users,
            notes,
            next_note_id: FIRST_NOTE_ID + NOTE_COUNT,
            leads,
        }
    }
}

// 20 and 13 are coprime, so (j % 20, j % 13) never repeats below 260: every generated
// organization name is unique.
#[rustfmt::skip]
const ORG_PREFIXES: [&str; 20] = [
    "Northwind", "Bluebird", "Silverline", "Redwood", "Evergreen", "Ironbridge", "Lakeside",
    "Brightwave", "Stonegate", "Copperfield", "Highland", "Seaside", "Goldcrest", "Riverbend",
    "Clearwater", "Oakridge", "Sunpeak", "Windmill", "Foxglove", "Harbor",
];

#[rustfmt::skip]
const ORG_SUFFIXES: [&str; 13] = [
    "Analytics", "Logistics", "Foods", "Robotics", "Health", "Capital", "Media", "Energy",
    "Software", "Textiles", "Consulting", "Labs", "Outfitters",
];

const INDUSTRIES: [&str; 10] = [
    "Software",
    "Logistics",
    "Food & Beverage",
    "Manufacturing",
    "Healthcare",
    "Financial Services",
    "Media",
    "Energy",
    "Retail",
    "Consulting",
];

/// (street, number, city, region, postal code, country).
#[rustfmt::skip]
const PLACES: [(&str, &str, &str, &str, &str, &str); 12] = [
    ("Market Street", "101", "San Francisco", "California", "94103", "United States"),
    ("Baker Street", "221", "London", "England", "NW1 6XE", "United Kingdom"),
    ("Viru", "5", "Tallinn", "Harju maakond", "10140", "Estonia"),
    ("Rua Augusta", "88", "Lisboa", "Lisboa", "1100-053", "Portugal"),
    ("Friedrichstraße", "43", "Berlin", "Berlin", "10117", "Germany"),
    ("Rue de Rivoli", "12", "Paris", "Île-de-France", "75004", "France"),
    ("Queen Street", "250", "Auckland", "Auckland", "1010", "New Zealand"),
    ("Yonge Street", "77", "Toronto", "Ontario", "M5E 1G4", "Canada"),
    ("Calle de Alcalá", "30", "Madrid", "Comunidad de Madrid", "28014", "Spain"),
    ("Nowy Świat", "6", "Warszawa", "Mazowieckie", "00-400", "Poland"),
    ("Orchard Road", "9", "Singapore", "Singapore", "238823", "Singapore"),
    ("Avenida Paulista", "1578", "São Paulo", "São Paulo", "01310-200", "Brazil"),
];

// 41 and 43 are coprime, so (i % 41, i % 43) never repeats below 1763.
#[rustfmt::skip]
const FIRST_NAMES: [&str; 41] = [
    "Olivia", "Liam", "Emma", "Noah", "Ava", "Mateo", "Mia", "Lucas", "Amelia", "Elias",
    "Sofia", "Jonas", "Isla", "Hugo", "Freya", "Oscar", "Maya", "Leo", "Nora", "Felix",
    "Ingrid", "Tomas", "Alma", "Rasmus", "Elsa", "Kai", "Lena", "Mikk", "Kertu", "Priya",
    "Arjun", "Chloe", "Diego", "Yara", "Omar", "Hana", "Kenji", "Zara", "Ivo", "Greta", "Milan",
];

#[rustfmt::skip]
const LAST_NAMES: [&str; 43] = [
    "Tamm", "Saar", "Sepp", "Mägi", "Kask", "Rebane", "Ilves", "Kukk", "Lepp", "Koppel",
    "Jensen", "Nielsen", "Hansen", "Berg", "Lindqvist", "Novak", "Horvat", "Kowalczyk",
    "Silva", "Santos", "Costa", "Moreau", "Lefebvre", "Rossi", "Bianchi", "Schneider",
    "Fischer", "Weber", "Murphy", "Walsh", "Patel", "Sharma", "Okafor", "Mensah", "Tanaka",
    "Sato", "Kim", "Park", "Nguyen", "Garcia", "Lopez", "Haddad", "Cohen",
];

const TIERS: [&str; 3] = ["gold", "silver", "bronze"];

fn at(base: (i32, u32, u32, u32), offset: Duration) -> DateTime<Utc> {
    let (y, m, d, h) = base;
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0)
        .single()
        .unwrap_or(DateTime::UNIX_EPOCH)
        + offset
}

fn small(i: u64, modulus: u64) -> i64 {
    i64::try_from(i % modulus.max(1)).unwrap_or(0)
}

fn pick<T: Copy>(list: &[T], i: u64) -> Option<T> {
    let len = u64::try_from(list.len()).ok()?;
    list.get(usize::try_from(i % len.max(1)).ok()?).copied()
}

/// Lower-case ASCII for email local parts and domains.
pub(crate) fn slug(s: &str) -> String {
    s.chars()
        .filter_map(|c| {
            let folded = match c {
                'á' | 'à' | 'â' | 'ä' | 'å' | 'Å' | 'ã' => 'a',
                'é' | 'è' | 'ë' | 'ê' => 'e',
                'í' | 'ï' => 'i',
                'ó' | 'ö' | 'ø' | 'ô' | 'Ö' => 'o',
                'ú' | 'ü' => 'u',
                'ñ' => 'n',
                'ç' => 'c',
                'ł' => 'l',
                'ś' => 's',
                c => c,
            };
            (folded.is_ascii_alphanumeric() || folded == '-').then(|| folded.to_ascii_lowercase())
        })
        .collect()
}

fn address(place: (&str, &str, &str, &str, &str, &str)) -> Map<String, Value> {
    let (street, number, city, region, postal, country) = place;
    let mut a = Map::new();
    for part in ADDRESS_PARTS {
        a.insert(part.to_owned(), Value::Null);
    }
    a.insert(
        "value".into(),
        json!(format!("{street} {number}, {postal} {city}, {country}")),
    );
    a.insert("country".into(), json!(country));
    a.insert("admin_area_level_1".into(), json!(region));
    a.insert("locality".into(), json!(city));
    a.insert("route".into(), json!(street));
    a.insert("street_number".into(), json!(number));
    a.insert("postal_code".into(), json!(postal));
    a
}

fn seed_org(j: u64) -> Record {
    let id = FIRST_ORG_ID + j;
    let generated = format!(
        "{} {}",
        pick(&ORG_PREFIXES, j).unwrap_or("Acme"),
        pick(&ORG_SUFFIXES, j).unwrap_or("Group")
    );
    // Hand-picked edge cases a mapping layer must survive.
    let name = match j {
        5 => "Société Générale de Café".to_owned(),
        9 => "O'Reilly & Daughters".to_owned(),
        17 => "Müller Maschinenbau GmbH".to_owned(),
        33 => "株式会社さくらテック".to_owned(),
        260 => "Northwind Analytics (EU)".to_owned(),
        _ => generated,
    };
    let created = at(
        (2022, 3, 1, 9),
        Duration::days(small(j, 400) * 2) + Duration::minutes(small(j * 37, 1440)),
    );
    let updated =
        created + Duration::days(20 + small(j * 11, 300)) + Duration::seconds(small(j * 7, 3600));
    let mut custom = BTreeMap::new();
    // Every tenth organization has no employee count, every seventh no industry.
    if j % 10 != 7 {
        let employees = pick(&[4u64, 12, 35, 80, 150, 420, 1200, 5000], j * 3).unwrap_or(10);
        custom.insert(ORG_EMPLOYEES_KEY.to_owned(), json!(employees));
    }
    if j % 7 != 2 {
        custom.insert(
            ORG_INDUSTRY_KEY.to_owned(),
            json!(pick(&INDUSTRIES, j * 3 + 1).unwrap_or("Software")),
        );
    }
    Record {
        id,
        name,
        owner_id: pick(&OWNER_IDS, j).unwrap_or(13_294_001),
        org_id: None,
        emails: Vec::new(),
        phones: Vec::new(),
        // Every eleventh organization has no address on file.
        address: (j % 11 != 4).then(|| address(pick(&PLACES, j * 5).unwrap_or(PLACES[0]))),
        add_time: created,
        update_time: updated,
        visible_to: 3,
        label_ids: if j.is_multiple_of(6) {
            vec![1]
        } else {
            Vec::new()
        },
        custom,
        deleted: false,
        extra: Extra::None,
    }
}

fn org_domain(org: Option<&Record>) -> String {
    org.map_or_else(
        || "mail.example".to_owned(),
        |o| {
            let s = slug(&o.name.replace(' ', "-"));
            let s = s.trim_matches('-');
            if s.is_empty() {
                format!("org{}.example", o.id)
            } else {
                format!("{s}.example")
            }
        },
    )
}

fn seed_person(i: u64, orgs: &BTreeMap<u64, Record>) -> Record {
    let id = FIRST_PERSON_ID + i;
    let first = pick(&FIRST_NAMES, i).unwrap_or("Alex");
    let last = pick(&LAST_NAMES, i).unwrap_or("Doe");
    let org_id = (i % 9 != 4).then(|| FIRST_ORG_ID + (i * 7) % ORG_COUNT);
    let domain = org_domain(org_id.and_then(|o| orgs.get(&o)));
    let mut name = format!("{first} {last}");
    let mut local = Some(format!("{}.{}", slug(first), slug(last)));
    let mut extra_email: Option<Channel> = None;
    match id {
        13 => local = None, // no email at all
        42 => {
            name = "Siobhán O'Brien".into();
            local = Some("siobhan.obrien".into());
        }
        77 => {
            name = "Zoë Ångström-Müller".into();
            local = Some("zoe.angstrom-muller".into());
        }
        100 => {
            name = "佐藤 美咲".into();
            local = Some("misaki.sato".into());
        }
        150 => {
            // One word: Pipedrive keeps `last_name` empty.
            name = "Prince".into();
            local = Some("prince".into());
        }
        201 => {
            // The primary address is not the first one.
            name = "Ana Souza".into();
            local = Some("ana.souza".into());
            extra_email = Some(Channel {
                value: "ana.souza.home@mail.example".into(),
                primary: false,
                label: "home".into(),
            });
        }
        231 => {
            name = "Robert Smith, Jr.".into();
            local = Some("robert.smith.jr".into());
        }
        _ => {}
    }
    let mut emails = Vec::new();
    if let Some(extra) = extra_email {
        emails.push(extra);
    }
    if let Some(local) = local {
        emails.push(Channel {
            value: format!("{local}@{domain}"),
            primary: true,
            label: "work".into(),
        });
    }
    let phones = if i % 6 == 5 || id == 13 {
        Vec::new()
    } else {
        vec![Channel {
            value: format!("+372 5{:03} {:04}", (i * 37) % 1000, (i * 7919) % 10_000),
            primary: true,
            label: if i.is_multiple_of(2) {
                "mobile"
            } else {
                "work"
            }
            .into(),
        }]
    };
    let created = at(
        (2023, 1, 15, 8),
        Duration::days(small(i, 500)) + Duration::seconds(small(i * 4567, 86_400)),
    );
    let updated =
        created + Duration::days(1 + small(i * 13, 200)) + Duration::seconds(small(i * 61, 3600));
    let mut custom = BTreeMap::new();
    if i % 7 != 3 {
        custom.insert(
            PERSON_TIER_KEY.to_owned(),
            json!(pick(&TIERS, i).unwrap_or("bronze")),
        );
    }
    Record {
        id,
        name,
        owner_id: pick(&OWNER_IDS, i / 3).unwrap_or(13_294_001),
        org_id,
        emails,
        phones,
        address: None,
        add_time: created,
        update_time: updated,
        visible_to: 3,
        label_ids: Vec::new(),
        custom,
        deleted: false,
        extra: Extra::None,
    }
}

// ---------------------------------------------------------------------------------------
// Pipelines, stages, deals, activities

/// (name, probabilities enabled, stages as (name, deal probability)).
type PipelineSeed = (&'static str, bool, &'static [(&'static str, u64)]);

#[rustfmt::skip]
const PIPELINES: [PipelineSeed; 3] = [
    ("Sales pipeline", true, &[
        ("Qualified", 10), ("Contact made", 20), ("Demo scheduled", 40),
        ("Proposal made", 60), ("Negotiations started", 80),
    ]),
    ("Partnerships", false, &[("Intro", 100), ("Evaluation", 100), ("Agreement", 100)]),
    ("Renewals", true, &[("Upcoming", 50), ("In discussion", 70), ("Committed", 90)]),
];

fn seed_pipeline(i: usize, p: &PipelineSeed) -> Record {
    let n = u64::try_from(i).unwrap_or(0);
    let created = at((2021, 11, 2, 9), Duration::days(small(n, 10) * 30));
    let mut r = Record::blank(
        n + 1,
        created,
        Extra::Pipeline(PipelineFields {
            order_nr: n + 1,
            is_deal_probability_enabled: p.1,
        }),
    );
    r.name = p.0.to_owned();
    r.update_time = created + Duration::days(3 + small(n, 5));
    r
}

fn seed_stages() -> Vec<Stage> {
    let mut out = Vec::new();
    let mut id = 1;
    for (p, (_, _, stages)) in PIPELINES.iter().enumerate() {
        for (order, (name, probability)) in stages.iter().enumerate() {
            out.push(Stage {
                id,
                pipeline_id: u64::try_from(p).unwrap_or(0) + 1,
                name: (*name).to_owned(),
                order_nr: u64::try_from(order).unwrap_or(0) + 1,
                deal_probability: *probability,
            });
            id += 1;
        }
    }
    out
}

const DEAL_TOPICS: [&str; 8] = [
    "Annual licence",
    "Pilot",
    "Expansion",
    "Onboarding package",
    "Support renewal",
    "Data migration",
    "Training",
    "Hardware refresh",
];

/// Deal values, a few with cents, one in the millions.
const DEAL_VALUES: [f64; 9] = [
    1500.0,
    12_500.0,
    990.99,
    48_000.0,
    250_000.0,
    7350.5,
    3200.0,
    1_234_567.89,
    640.0,
];

const CURRENCIES: [&str; 3] = ["EUR", "USD", "GBP"];

fn seed_deal(
    i: u64,
    persons: &BTreeMap<u64, Record>,
    orgs: &BTreeMap<u64, Record>,
    stages: &[Stage],
) -> Record {
    let id = FIRST_DEAL_ID + i;
    let pipeline_id = pick(&[1u64, 1, 2, 3], i).unwrap_or(1);
    let in_pipeline: Vec<&Stage> = stages
        .iter()
        .filter(|s| s.pipeline_id == pipeline_id)
        .collect();
    let stage = pick(&in_pipeline, i / 4).map_or(1, |s| s.id);
    // Every 37th deal is bare (no person, no organization); otherwise a person, and the
    // person's organization, or (every eighth) an organization alone.
    let (person_id, org_id) = if i % 37 == 20 {
        (None, None)
    } else if i % 8 == 6 {
        (None, Some(FIRST_ORG_ID + (i * 13) % ORG_COUNT))
    } else {
        let p = FIRST_PERSON_ID + (i * 11) % PERSON_COUNT;
        (Some(p), persons.get(&p).and_then(|r| r.org_id))
    };
    let status = if i % 5 == 1 {
        "won"
    } else if i % 7 == 4 {
        "lost"
    } else {
        "open"
    };
    let created = at(
        (2023, 3, 1, 8),
        Duration::days(small(i * 3, 600)) + Duration::seconds(small(i * 4099, 86_400)),
    );
    let updated =
        created + Duration::days(2 + small(i * 17, 240)) + Duration::seconds(small(i * 53, 3600));
    let closed = (status != "open").then(|| updated - Duration::hours(2));
    let topic = pick(&DEAL_TOPICS, i).unwrap_or("Deal");
    let who = org_id
        .and_then(|o| orgs.get(&o))
        .or_else(|| person_id.and_then(|p| persons.get(&p)))
        .map_or_else(|| "walk-in".to_owned(), |r| r.name.clone());
    let title = match id {
        5003 => "Zürich office — Größere Lizenz".to_owned(),
        _ => format!("{topic} — {who}"),
    };
    let mut r = Record::blank(
        id,
        created,
        Extra::Deal(DealFields {
            person_id,
            pipeline_id,
            stage_id: stage,
            value: pick(&DEAL_VALUES, i * 5).unwrap_or(1000.0),
            currency: pick(&CURRENCIES, i / 2).unwrap_or("EUR").to_owned(),
            status: status.to_owned(),
            probability: (i % 6 == 2).then(|| pick(&[25.0, 50.0, 75.0, 90.0], i).unwrap_or(50.0)),
            lost_reason: (status == "lost").then(|| {
                pick(&["Price", "Timing", "Went with a competitor"], i)
                    .unwrap_or("Price")
                    .to_owned()
            }),
            expected_close_date: (i % 4 != 3)
                .then(|| (created + Duration::days(30 + small(i * 7, 180))).date_naive()),
            close_time: closed,
            won_time: closed.filter(|_| status == "won"),
            lost_time: closed.filter(|_| status == "lost"),
            stage_change_time: Some(updated - Duration::days(1)),
        }),
    );
    r.name = title;
    r.owner_id = pick(&OWNER_IDS, i / 2).unwrap_or(OWNER_IDS[0]);
    r.org_id = org_id;
    r.update_time = updated;
    r
}

fn seed_activity(i: u64, persons: &BTreeMap<u64, Record>, deals: &BTreeMap<u64, Record>) -> Record {
    let id = FIRST_ACTIVITY_ID + i;
    let kind = pick(
        &[
            "task", "call", "meeting", "task", "email", "deadline", "task",
        ],
        i,
    )
    .unwrap_or("task");
    // A third on a deal (with its person and organization), a third on a person (with the
    // person's organization), a third on an organization alone.
    let (deal_id, person_id, org_id) = match i % 3 {
        0 => {
            let d = FIRST_DEAL_ID + (i * 7) % DEAL_COUNT;
            let deal = deals.get(&d);
            (
                Some(d),
                deal.and_then(|r| r.deal()).and_then(|x| x.person_id),
                deal.and_then(|r| r.org_id),
            )
        }
        1 => {
            let p = FIRST_PERSON_ID + (i * 17) % PERSON_COUNT;
            (None, Some(p), persons.get(&p).and_then(|r| r.org_id))
        }
        _ => (None, None, Some(FIRST_ORG_ID + (i * 5) % ORG_COUNT)),
    };
    let created = at(
        (2024, 1, 8, 7),
        Duration::days(small(i * 2, 420)) + Duration::seconds(small(i * 3571, 86_400)),
    );
    let due = (created + Duration::days(3 + small(i, 20))).date_naive();
    let done = i % 4 == 1;
    let updated =
        created + Duration::days(4 + small(i * 19, 150)) + Duration::seconds(small(i * 29, 3600));
    let subject = match (kind, id) {
        (_, 20_005) => "Send the signed contract ✍️ to Zoë".to_owned(),
        ("task", _) => pick(
            &[
                "Prepare proposal",
                "Send follow-up email",
                "Update pricing sheet",
                "Check references",
            ],
            i / 7,
        )
        .unwrap_or("Task")
        .to_owned(),
        ("call", _) => "Discovery call".to_owned(),
        ("meeting", _) => "Product demo".to_owned(),
        ("email", _) => "Intro email".to_owned(),
        ("deadline", _) => "Quote expires".to_owned(),
        _ => "Lunch".to_owned(),
    };
    let mut r = Record::blank(
        id,
        created,
        Extra::Activity(ActivityFields {
            kind: kind.to_owned(),
            deal_id,
            lead_id: None,
            person_id,
            due_date: Some(due),
            due_time: (i % 3 != 2).then(|| format!("{:02}:{:02}", 8 + i % 9, (i * 15) % 60)),
            duration: (kind == "meeting" || kind == "call").then(|| "00:30".to_owned()),
            busy: kind == "meeting",
            done,
            marked_as_done_time: done.then(|| updated - Duration::minutes(5)),
            note: (!i.is_multiple_of(5))
                .then(|| format!("<p>Notes for activity {id}: agenda &amp; next steps.</p>")),
            public_description: None,
            priority: None,
        }),
    );
    r.name = subject;
    r.owner_id = pick(&OWNER_IDS, i).unwrap_or(OWNER_IDS[0]);
    r.org_id = org_id;
    r.update_time = updated;
    r
}

// ---------------------------------------------------------------------------------------
// Users, leads, notes (API v1)

fn seed_users() -> BTreeMap<u64, User> {
    let rows = [
        (
            OWNER_IDS[0],
            "Kadri Lepik",
            "kadri.lepik",
            true,
            true,
            "Europe/Tallinn",
        ),
        (
            OWNER_IDS[1],
            "Marcus Webb",
            "marcus.webb",
            true,
            false,
            "Europe/London",
        ),
        (
            OWNER_IDS[2],
            "Aiko Tanaka",
            "aiko.tanaka",
            true,
            false,
            "Asia/Tokyo",
        ),
        (
            FORMER_USER_ID,
            "Tom Lindgren",
            "tom.lindgren",
            false,
            false,
            "Europe/Stockholm",
        ),
    ];
    rows.iter()
        .enumerate()
        .map(|(i, (id, name, local, active, admin, tz))| {
            let n = u64::try_from(i).unwrap_or(0);
            let created = at((2021, 10, 4, 9), Duration::days(small(n, 10) * 45));
            (
                *id,
                User {
                    id: *id,
                    name: (*name).to_owned(),
                    email: format!("{local}@sandbox-company.example"),
                    active_flag: *active,
                    is_admin: *admin,
                    created,
                    modified: created + Duration::days(200 + small(n, 10) * 31),
                    last_login: active
                        .then(|| at((2026, 11, 20, 8), Duration::hours(small(n, 10) * 5))),
                    timezone_name: tz,
                },
            )
        })
        .collect()
}

/// A deterministic UUID (v4 layout) for lead `i`.
pub(crate) fn lead_id(i: u64) -> String {
    let a = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5DEE_CE66_D1CE_4E5B;
    let b = i.wrapping_mul(0xC2B2_AE3D_27D4_EB4F).rotate_left(17) ^ 0x1656_67B1_9E37_79F9;
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0x0fff,
        0x8000 | (b >> 48 & 0x3fff),
        b & 0xffff_ffff_ffff
    )
}

const LEAD_SOURCES: [(&str, &str); 6] = [
    ("Manually created", "ManuallyCreated"),
    ("Web forms", "WebForms"),
    ("Prospector", "Prospector"),
    ("Import", "Import"),
    ("API", "API"),
    ("Chatbot", "Chatbot"),
];

fn seed_lead(i: u64, persons: &BTreeMap<u64, Record>, orgs: &BTreeMap<u64, Record>) -> Lead {
    // Three in four name a person (and the person's organization), the rest an
    // organization alone.
    let (person_id, organization_id) = if i % 4 == 3 {
        (None, Some(FIRST_ORG_ID + (i * 19) % ORG_COUNT))
    } else {
        let p = FIRST_PERSON_ID + (i * 23) % PERSON_COUNT;
        (Some(p), persons.get(&p).and_then(|r| r.org_id))
    };
    let label = organization_id
        .and_then(|o| orgs.get(&o))
        .or_else(|| person_id.and_then(|p| persons.get(&p)))
        .map_or_else(|| "Unknown".to_owned(), |r| r.name.clone());
    let (source_name, origin) = pick(&LEAD_SOURCES, i).unwrap_or(LEAD_SOURCES[0]);
    let created = at(
        (2025, 2, 3, 10),
        Duration::days(small(i * 5, 300)) + Duration::seconds(small(i * 7121, 86_400)),
    );
    Lead {
        id: lead_id(i),
        title: format!("{label} lead"),
        owner_id: pick(&OWNER_IDS, i).unwrap_or(OWNER_IDS[0]),
        creator_id: pick(&OWNER_IDS, i / 3).unwrap_or(OWNER_IDS[0]),
        label_ids: if i.is_multiple_of(5) {
            vec!["f08b42a0-4e75-11ea-9643-03698ef1cfd6".to_owned()]
        } else {
            Vec::new()
        },
        person_id,
        organization_id,
        source_name,
        origin,
        is_archived: i % 9 == 5,
        was_seen: i.is_multiple_of(2),
        value: (i % 3 != 2).then(|| {
            (
                pick(&DEAL_VALUES, i * 3).unwrap_or(1000.0),
                pick(&CURRENCIES, i).unwrap_or("EUR").to_owned(),
            )
        }),
        expected_close_date: (i % 2 == 1).then(|| (created + Duration::days(60)).date_naive()),
        add_time: created,
        update_time: created
            + Duration::days(small(i * 11, 90))
            + Duration::seconds(small(i * 31, 3600)),
    }
}

fn seed_note(i: u64, persons: &BTreeMap<u64, Record>, deals: &BTreeMap<u64, Record>) -> Note {
    let id = FIRST_NOTE_ID + i;
    let (deal_id, person_id, org_id) = match i % 3 {
        0 => {
            let d = FIRST_DEAL_ID + (i * 11) % DEAL_COUNT;
            let deal = deals.get(&d);
            (
                Some(d),
                deal.and_then(|r| r.deal()).and_then(|x| x.person_id),
                deal.and_then(|r| r.org_id),
            )
        }
        1 => {
            let p = FIRST_PERSON_ID + (i * 13) % PERSON_COUNT;
            (None, Some(p), persons.get(&p).and_then(|r| r.org_id))
        }
        _ => (None, None, Some(FIRST_ORG_ID + (i * 3) % ORG_COUNT)),
    };
    let created = at(
        (2024, 2, 12, 9),
        Duration::days(small(i * 3, 500)) + Duration::seconds(small(i * 5303, 86_400)),
    );
    let edited = i % 4 == 2;
    let content = match id {
        7 => "<p>Budget approved for Q3 — “go” from the CFO. Next: legal review.</p><ul><li>MSA</li><li>DPA</li></ul>".to_owned(),
        _ => format!(
            "<p>{}</p>",
            pick(
                &[
                    "Called, left a voicemail.",
                    "Asked for a revised quote with annual billing.",
                    "Met at the trade fair; interested in the pilot.",
                    "Prefers email over phone.",
                    "Decision expected after the board meeting.",
                ],
                i,
            )
            .unwrap_or("Note.")
        ),
    };
    let user_id = pick(&OWNER_IDS, i / 2).unwrap_or(OWNER_IDS[0]);
    Note {
        id,
        user_id,
        deal_id,
        person_id,
        org_id,
        lead_id: None,
        content,
        add_time: created,
        update_time: if edited {
            created + Duration::days(1 + small(i, 30))
        } else {
            created
        },
        last_update_user_id: edited.then_some(user_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn seed_is_deterministic_with_unique_names_and_emails() {
        let a = Store::seed();
        let b = Store::seed();
        for entity in Entity::ALL {
            let left: Vec<Value> = a
                .table(entity)
                .values()
                .map(|r| r.render(entity, None))
                .collect();
            let right: Vec<Value> = b
                .table(entity)
                .values()
                .map(|r| r.render(entity, None))
                .collect();
            assert_eq!(left, right);
            if entity != Entity::Pipelines {
                assert!(left.len() >= 260, "{entity:?}");
            }
        }
        let names: HashSet<&str> = a
            .table(Entity::Organizations)
            .values()
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(names.len(), usize::try_from(ORG_COUNT).unwrap());
        let emails: Vec<String> = a
            .table(Entity::Persons)
            .values()
            .flat_map(|r| r.emails.iter().map(|e| e.value.to_lowercase()))
            .collect();
        let unique: HashSet<&String> = emails.iter().collect();
        assert_eq!(unique.len(), emails.len());
        for record in a.table(Entity::Persons).values() {
            assert!(record.add_time < record.update_time);
            assert!(record.emails.iter().filter(|e| e.primary).count() <= 1);
            if let Some(org) = record.org_id {
                assert!(a.live(Entity::Organizations, org).is_some());
            }
        }
    }

    #[test]
    fn links_are_consistent_across_entities() {
        let s = Store::seed();
        let person_org = |p: u64| s.live(Entity::Persons, p).and_then(|r| r.org_id);
        for deal in s.table(Entity::Deals).values() {
            let d = deal.deal().unwrap();
            if let Some(p) = d.person_id {
                assert_eq!(deal.org_id, person_org(p), "deal {}", deal.id);
            }
            assert_eq!(s.stage(d.stage_id).unwrap().pipeline_id, d.pipeline_id);
            assert_eq!(d.close_time.is_some(), d.status != "open");
        }
        for activity in s.table(Entity::Activities).values() {
            let a = activity.activity().unwrap();
            if let Some(d) = a.deal_id {
                let deal = s.live(Entity::Deals, d).unwrap();
                assert_eq!(a.person_id, deal.deal().unwrap().person_id);
                assert_eq!(activity.org_id, deal.org_id);
            }
            assert_eq!(a.done, a.marked_as_done_time.is_some());
            assert!(ACTIVITY_TYPES.contains(&a.kind.as_str()));
        }
        for note in s.notes.values() {
            assert!(note.deal_id.is_some() || note.person_id.is_some() || note.org_id.is_some());
            if let Some(p) = note.person_id {
                assert_eq!(note.org_id, person_org(p), "note {}", note.id);
            }
        }
        let lead_ids: HashSet<&String> = s.leads.keys().collect();
        assert_eq!(lead_ids.len(), usize::try_from(LEAD_COUNT).unwrap());
        for lead in s.leads.values() {
            assert!(uuid::Uuid::parse_str(&lead.id).is_ok(), "{}", lead.id);
            if let Some(p) = lead.person_id {
                assert_eq!(lead.organization_id, person_org(p));
            }
            assert!(OWNER_IDS.contains(&lead.owner_id));
        }
        assert_eq!(s.users.len(), 4);
    }

    #[test]
    fn custom_field_keys_are_40_hex_characters() {
        for entity in Entity::ALL {
            for (key, _) in entity.custom_fields() {
                assert_eq!(key.len(), 40, "{key}");
                assert!(
                    key.chars()
                        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
                );
            }
        }
    }

    #[test]
    fn names_split_like_pipedrive() {
        assert_eq!(
            split_name("Ana Souza"),
            (Some("Ana".into()), Some("Souza".into()))
        );
        assert_eq!(
            split_name("Robert Smith, Jr."),
            (Some("Robert".into()), Some("Smith, Jr.".into()))
        );
        assert_eq!(split_name("Prince"), (Some("Prince".into()), None));
        assert_eq!(split_name("  "), (None, None));
    }
}
