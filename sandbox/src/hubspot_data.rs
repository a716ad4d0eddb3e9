//! The HubSpot sandbox's records: a deterministic seed (no randomness, identical on every
//! start and after `/_control/reset`) and the property schema that decides what a read
//! returns and what a write may set. Also the account's owners and deal pipelines, which
//! are fixed (HubSpot manages them outside the objects API).
//!
//! Associations: a contact's primary company is its `associatedcompanyid` property, as
//! HubSpot mirrors it; deals, notes, tasks and leads keep their companies, contacts (and
//! deals) on themselves ([`Record::links`]). Every other direction is derived from those.
//!
//! Calculated properties (read-only, computed on every read like HubSpot's): a deal's
//! `hs_deal_stage_probability` (its stage's probability) and a lead's
//! `hs_primary_contact_id`, `hs_associated_contact_*` and `hs_associated_company_*`
//! (from the contact and company the lead is associated with).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{Map, Value, json};

use super::control::iso_millis;

pub(crate) const CONTACT_COUNT: u64 = 260;
pub(crate) const FIRST_CONTACT_ID: u64 = 1001;
pub(crate) const COMPANY_COUNT: u64 = 260;
pub(crate) const FIRST_COMPANY_ID: u64 = 5001;
/// The first companies come from the hand-written [`COMPANIES`] table; contacts are spread
/// over these only, so growing the company list left every seeded contact unchanged.
const NAMED_COMPANY_COUNT: u64 = 45;
pub(crate) const DEAL_COUNT: u64 = 260;
pub(crate) const FIRST_DEAL_ID: u64 = 7001;
pub(crate) const NOTE_COUNT: u64 = 260;
pub(crate) const FIRST_NOTE_ID: u64 = 20_001;
pub(crate) const TASK_COUNT: u64 = 260;
pub(crate) const FIRST_TASK_ID: u64 = 30_001;
pub(crate) const LEAD_COUNT: u64 = 260;
pub(crate) const FIRST_LEAD_ID: u64 = 40_001;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ObjectType {
    Contacts,
    Companies,
    Deals,
    Notes,
    Tasks,
    Leads,
}

/// HubSpot's default contact lifecycle stages.
const LIFECYCLE_STAGES: &[&str] = &[
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
];

const CONTACT_PROPERTIES: &[&str] = &[
    "address",
    "associatedcompanyid",
    "city",
    "company",
    "country",
    "createdate",
    "customer_tier",
    "email",
    "firstname",
    "hs_object_id",
    "hubspot_owner_id",
    "jobtitle",
    "lastmodifieddate",
    "lastname",
    "lifecyclestage",
    "mobilephone",
    "notes_last_updated",
    "phone",
    "state",
    "website",
    "zip",
];

const COMPANY_PROPERTIES: &[&str] = &[
    "address",
    "annualrevenue",
    "city",
    "country",
    "createdate",
    "description",
    "domain",
    "hs_lastmodifieddate",
    "hs_object_id",
    "hubspot_owner_id",
    "industry",
    "lifecyclestage",
    "name",
    "notes_last_updated",
    "numberofemployees",
    "phone",
    "state",
    "website",
    "zip",
];

const DEAL_PROPERTIES: &[&str] = &[
    "amount",
    "closedate",
    "createdate",
    "deal_currency_code",
    "dealname",
    "dealstage",
    "dealtype",
    "description",
    "hs_deal_stage_probability",
    "hs_lastmodifieddate",
    "hs_object_id",
    "hubspot_owner_id",
    "notes_last_updated",
    "pipeline",
];

const NOTE_PROPERTIES: &[&str] = &[
    "hs_createdate",
    "hs_lastmodifieddate",
    "hs_note_body",
    "hs_object_id",
    "hs_timestamp",
    "hubspot_owner_id",
];

const TASK_PROPERTIES: &[&str] = &[
    "hs_createdate",
    "hs_lastmodifieddate",
    "hs_object_id",
    "hs_task_body",
    "hs_task_completion_date",
    "hs_task_priority",
    "hs_task_status",
    "hs_task_subject",
    "hs_task_type",
    "hs_timestamp",
    "hubspot_owner_id",
];

const LEAD_PROPERTIES: &[&str] = &[
    "createdate",
    "hs_associated_company_domain",
    "hs_associated_company_name",
    "hs_associated_contact_email",
    "hs_associated_contact_firstname",
    "hs_associated_contact_lastname",
    "hs_lastmodifieddate",
    "hs_lead_label",
    "hs_lead_name",
    "hs_lead_type",
    "hs_object_id",
    "hs_pipeline",
    "hs_pipeline_stage",
    "hs_primary_contact_id",
    "hubspot_owner_id",
];

/// Properties HubSpot computes; a write naming one is refused as read-only.
const CALCULATED_PROPERTIES: &[&str] = &[
    "hs_deal_stage_probability",
    "hs_task_completion_date",
    "hs_primary_contact_id",
    "hs_associated_contact_email",
    "hs_associated_contact_firstname",
    "hs_associated_contact_lastname",
    "hs_associated_company_name",
    "hs_associated_company_domain",
];

/// Datetime properties: reads give ISO-8601 with milliseconds; writes and search filters
/// take ISO-8601 or epoch milliseconds.
const DATETIME_PROPERTIES: &[&str] = &[
    "closedate",
    "createdate",
    "hs_createdate",
    "hs_lastmodifieddate",
    "hs_task_completion_date",
    "hs_timestamp",
    "lastmodifieddate",
    "notes_last_updated",
];

/// Numeric properties: search compares them as numbers.
const NUMBER_PROPERTIES: &[&str] = &[
    "amount",
    "annualrevenue",
    "associatedcompanyid",
    "hs_deal_stage_probability",
    "hs_object_id",
    "hs_primary_contact_id",
    "numberofemployees",
];

pub(crate) const TASK_STATUSES: [&str; 5] = [
    "NOT_STARTED",
    "IN_PROGRESS",
    "WAITING",
    "COMPLETED",
    "DEFERRED",
];
const TASK_PRIORITIES: [&str; 4] = ["NONE", "LOW", "MEDIUM", "HIGH"];
const TASK_TYPES: [&str; 3] = ["TODO", "CALL", "EMAIL"];
pub(crate) const LEAD_PIPELINE: &str = "lead-pipeline-id";
/// HubSpot's default lead pipeline: (stage id, label).
pub(crate) const LEAD_STAGES: [(&str, &str); 5] = [
    ("new-stage-id", "New"),
    ("attempting-stage-id", "Attempting"),
    ("connected-stage-id", "Connected"),
    ("qualified-stage-id", "Qualified"),
    ("unqualified-stage-id", "Disqualified"),
];
const LEAD_TYPES: [&str; 3] = ["NEW_BUSINESS", "UPSELL", "RE_ATTEMPTING"];
const LEAD_LABELS: [&str; 3] = ["COLD", "WARM", "HOT"];

impl ObjectType {
    pub(crate) const ALL: [ObjectType; 6] = [
        ObjectType::Contacts,
        ObjectType::Companies,
        ObjectType::Deals,
        ObjectType::Notes,
        ObjectType::Tasks,
        ObjectType::Leads,
    ];

    fn index(self) -> usize {
        match self {
            ObjectType::Contacts => 0,
            ObjectType::Companies => 1,
            ObjectType::Deals => 2,
            ObjectType::Notes => 3,
            ObjectType::Tasks => 4,
            ObjectType::Leads => 5,
        }
    }

    pub(crate) fn from_path(segment: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.path() == segment)
    }

    pub(crate) fn path(self) -> &'static str {
        match self {
            ObjectType::Contacts => "contacts",
            ObjectType::Companies => "companies",
            ObjectType::Deals => "deals",
            ObjectType::Notes => "notes",
            ObjectType::Tasks => "tasks",
            ObjectType::Leads => "leads",
        }
    }

    pub(crate) fn singular(self) -> &'static str {
        match self {
            ObjectType::Contacts => "contact",
            ObjectType::Companies => "company",
            ObjectType::Deals => "deal",
            ObjectType::Notes => "note",
            ObjectType::Tasks => "task",
            ObjectType::Leads => "lead",
        }
    }

    /// The `associations=` query parameter takes plural or singular names.
    pub(crate) fn from_association_name(name: &str) -> Option<Self> {
        let name = name.trim().to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|t| t.path() == name || t.singular() == name)
    }

    /// Name of the id path parameter in HubSpot's own spec, so route templates in
    /// `/_control/stats` read like the vendor docs.
    pub(crate) fn id_param(self) -> &'static str {
        match self {
            ObjectType::Contacts => "contactId",
            ObjectType::Companies => "companyId",
            ObjectType::Deals => "dealId",
            ObjectType::Notes => "noteId",
            ObjectType::Tasks => "taskId",
            ObjectType::Leads => "leadsId",
        }
    }

    /// As HubSpot spells the type inside batch error messages.
    pub(crate) fn upper_singular(self) -> &'static str {
        match self {
            ObjectType::Contacts => "CONTACT",
            ObjectType::Companies => "COMPANY",
            ObjectType::Deals => "DEAL",
            ObjectType::Notes => "NOTE",
            ObjectType::Tasks => "TASK",
            ObjectType::Leads => "LEAD",
        }
    }

    pub(crate) fn modified_property(self) -> &'static str {
        match self {
            ObjectType::Contacts => "lastmodifieddate",
            _ => "hs_lastmodifieddate",
        }
    }

    /// Engagements (notes, tasks) keep their creation time in `hs_createdate`.
    pub(crate) fn created_property(self) -> &'static str {
        match self {
            ObjectType::Notes | ObjectType::Tasks => "hs_createdate",
            _ => "createdate",
        }
    }

    pub(crate) fn known_properties(self) -> &'static [&'static str] {
        match self {
            ObjectType::Contacts => CONTACT_PROPERTIES,
            ObjectType::Companies => COMPANY_PROPERTIES,
            ObjectType::Deals => DEAL_PROPERTIES,
            ObjectType::Notes => NOTE_PROPERTIES,
            ObjectType::Tasks => TASK_PROPERTIES,
            ObjectType::Leads => LEAD_PROPERTIES,
        }
    }

    pub(crate) fn is_known(self, property: &str) -> bool {
        self.known_properties().contains(&property)
    }

    pub(crate) fn default_properties(self) -> &'static [&'static str] {
        match self {
            ObjectType::Contacts => &[
                "createdate",
                "email",
                "firstname",
                "hs_object_id",
                "lastmodifieddate",
                "lastname",
            ],
            ObjectType::Companies => &[
                "createdate",
                "domain",
                "hs_lastmodifieddate",
                "hs_object_id",
                "name",
            ],
            ObjectType::Deals => &[
                "amount",
                "closedate",
                "createdate",
                "dealname",
                "dealstage",
                "hs_lastmodifieddate",
                "hs_object_id",
                "pipeline",
            ],
            ObjectType::Notes | ObjectType::Tasks => {
                &["hs_createdate", "hs_lastmodifieddate", "hs_object_id"]
            }
            ObjectType::Leads => &["createdate", "hs_lastmodifieddate", "hs_object_id"],
        }
    }

    /// What a search `query` matches against (HubSpot's "default searchable properties").
    pub(crate) fn searchable_properties(self) -> &'static [&'static str] {
        match self {
            ObjectType::Contacts => &[
                "firstname",
                "lastname",
                "email",
                "phone",
                "mobilephone",
                "company",
            ],
            ObjectType::Companies => &["name", "domain", "website", "phone"],
            ObjectType::Deals => &[
                "dealname",
                "pipeline",
                "dealstage",
                "description",
                "dealtype",
            ],
            ObjectType::Notes => &["hs_note_body"],
            ObjectType::Tasks => &["hs_task_subject", "hs_task_body"],
            ObjectType::Leads => &["hs_lead_name"],
        }
    }

    /// Returned whatever `properties=` asks for.
    pub(crate) fn always_properties(self) -> [&'static str; 3] {
        [
            self.created_property(),
            "hs_object_id",
            self.modified_property(),
        ]
    }

    pub(crate) fn is_read_only(self, property: &str) -> bool {
        property == "hs_object_id"
            || property == self.modified_property()
            || CALCULATED_PROPERTIES.contains(&property)
    }

    /// The allowed values of an enumeration property, where the sandbox checks them.
    pub(crate) fn options(self, property: &str) -> Option<Vec<&'static str>> {
        match (self, property) {
            (ObjectType::Tasks, "hs_task_status") => Some(TASK_STATUSES.to_vec()),
            (ObjectType::Tasks, "hs_task_priority") => Some(TASK_PRIORITIES.to_vec()),
            (ObjectType::Tasks, "hs_task_type") => Some(TASK_TYPES.to_vec()),
            (ObjectType::Leads, "hs_pipeline") => Some(vec![LEAD_PIPELINE]),
            (ObjectType::Leads, "hs_pipeline_stage") => {
                Some(LEAD_STAGES.iter().map(|(id, _)| *id).collect())
            }
            (ObjectType::Leads, "hs_lead_type") => Some(LEAD_TYPES.to_vec()),
            (ObjectType::Leads, "hs_lead_label") => Some(LEAD_LABELS.to_vec()),
            _ => None,
        }
    }

    /// Properties a create must set (HubSpot refuses the record without them).
    pub(crate) fn required_on_create(self) -> &'static [&'static str] {
        match self {
            ObjectType::Notes | ObjectType::Tasks => &["hs_timestamp"],
            ObjectType::Leads => &["hs_lead_name"],
            _ => &[],
        }
    }

    /// Types that keep their associations on themselves ([`Record::links`]).
    pub(crate) fn holds_links(self) -> bool {
        !matches!(self, ObjectType::Contacts | ObjectType::Companies)
    }

    /// The association type label HubSpot v3 reports from this object to `to`.
    pub(crate) fn association_label(self, to: ObjectType) -> String {
        format!("{}_to_{}", self.singular(), to.singular())
    }

    /// The object type a HUBSPOT_DEFINED `associationTypeId` from this type points at
    /// (1/279 contact->company, 2/280 company->contact, 3 deal->contact, 4 contact->deal,
    /// 5/341 deal->company, 6/342 company->deal; the first of each pair is "primary";
    /// notes 202/190/214 and tasks 204/192/216 to contact/company/deal, and back
    /// 201/189/213 and 203/191/215; leads 578 to their primary contact, 580 to their
    /// primary company).
    pub(crate) fn association_target(self, type_id: u64) -> Option<ObjectType> {
        use ObjectType::{Companies, Contacts, Deals, Leads, Notes, Tasks};
        match (self, type_id) {
            (Contacts, 1 | 279) | (Deals, 5 | 341) | (Notes, 190) | (Tasks, 192) | (Leads, 580) => {
                Some(Companies)
            }
            (Companies, 2 | 280) | (Deals, 3) | (Notes, 202) | (Tasks, 204) | (Leads, 578) => {
                Some(Contacts)
            }
            (Contacts, 4) | (Companies, 6 | 342) | (Notes, 214) | (Tasks, 216) => Some(Deals),
            (Contacts, 201) | (Companies, 189) | (Deals, 213) => Some(Notes),
            (Contacts, 203) | (Companies, 191) | (Deals, 215) => Some(Tasks),
            _ => None,
        }
    }
}

/// A datetime property value (ISO-8601, or epoch milliseconds) as epoch milliseconds.
pub(crate) fn parse_datetime(value: &str) -> Option<i64> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse().ok();
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Some(t.timestamp_millis());
    }
    chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_millis())
}

pub(crate) fn is_datetime(property: &str) -> bool {
    DATETIME_PROPERTIES.contains(&property)
}

pub(crate) fn is_number(property: &str) -> bool {
    NUMBER_PROPERTIES.contains(&property)
}

#[derive(Clone, Debug)]
pub(crate) struct Record {
    pub id: u64,
    /// Absent key = the property has no value (HubSpot reports it as `null` when asked).
    pub properties: BTreeMap<String, String>,
    pub archived_at: Option<String>,
    /// Deals, notes, tasks and leads: the records they are associated with.
    pub links: Vec<(ObjectType, u64)>,
}

/// Which properties a read renders.
pub(crate) enum Selection<'a> {
    /// No `properties` parameter: the object type's default set.
    Default,
    /// Explicit names: known ones plus the always-returned ones; unknown names dropped.
    Only(&'a [String]),
    /// Every property that has a value (write responses).
    Present,
    /// Every property in the schema, `null` where unset (sample records).
    Schema,
}

impl Record {
    pub(crate) fn render(&self, ty: ObjectType, selection: &Selection<'_>) -> Value {
        let names: Vec<&str> = match selection {
            Selection::Default => ty.default_properties().to_vec(),
            Selection::Only(requested) => {
                let mut names: Vec<&str> = requested
                    .iter()
                    .map(String::as_str)
                    .filter(|n| ty.is_known(n))
                    .chain(ty.always_properties())
                    .collect();
                names.sort_unstable();
                names.dedup();
                names
            }
            Selection::Present => self.properties.keys().map(String::as_str).collect(),
            Selection::Schema => ty.known_properties().to_vec(),
        };
        let mut properties = Map::new();
        for name in names {
            let value = self.properties.get(name).map_or(Value::Null, |v| json!(v));
            properties.insert(name.to_owned(), value);
        }
        let mut out = Map::new();
        out.insert("id".into(), json!(self.id.to_string()));
        out.insert("properties".into(), Value::Object(properties));
        out.insert(
            "createdAt".into(),
            json!(self.property(ty.created_property())),
        );
        out.insert(
            "updatedAt".into(),
            json!(self.property(ty.modified_property())),
        );
        out.insert("archived".into(), json!(self.archived_at.is_some()));
        if let Some(at) = &self.archived_at {
            out.insert("archivedAt".into(), json!(at));
        }
        Value::Object(out)
    }

    pub(crate) fn property(&self, name: &str) -> Option<&str> {
        self.properties.get(name).map(String::as_str)
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Store {
    tables: [BTreeMap<u64, Record>; 6],
    next_ids: [u64; 6],
}

impl Store {
    pub(crate) fn table(&self, ty: ObjectType) -> &BTreeMap<u64, Record> {
        &self.tables[ty.index()]
    }

    pub(crate) fn table_mut(&mut self, ty: ObjectType) -> &mut BTreeMap<u64, Record> {
        &mut self.tables[ty.index()]
    }

    /// Ids are never reused, even after an archive, as in HubSpot.
    pub(crate) fn allocate_id(&mut self, ty: ObjectType) -> u64 {
        let next = &mut self.next_ids[ty.index()];
        let id = *next;
        *next += 1;
        id
    }

    /// Live (non-archived) record by id.
    pub(crate) fn live(&self, ty: ObjectType, id: u64) -> Option<&Record> {
        self.table(ty).get(&id).filter(|r| r.archived_at.is_none())
    }

    /// Ids of live `to` records associated with `record` (of type `from`), ascending.
    pub(crate) fn associations(
        &self,
        from: ObjectType,
        record: &Record,
        to: ObjectType,
    ) -> Vec<u64> {
        use ObjectType::{Companies, Contacts};
        let me = record.id;
        let mut ids: Vec<u64> = match (from, to) {
            (Contacts, Companies) => record
                .property("associatedcompanyid")
                .and_then(|id| id.parse().ok())
                .into_iter()
                .collect(),
            (Companies, Contacts) => {
                let me = me.to_string();
                self.table(Contacts)
                    .values()
                    .filter(|c| c.property("associatedcompanyid") == Some(me.as_str()))
                    .map(|c| c.id)
                    .collect()
            }
            _ if from == to => Vec::new(),
            _ => {
                let mut ids = Vec::new();
                if from.holds_links() {
                    ids.extend(
                        record
                            .links
                            .iter()
                            .filter(|(ty, _)| *ty == to)
                            .map(|(_, id)| *id),
                    );
                }
                if to.holds_links() {
                    ids.extend(
                        self.table(to)
                            .values()
                            .filter(|r| r.links.contains(&(from, me)))
                            .map(|r| r.id),
                    );
                }
                ids
            }
        };
        ids.sort_unstable();
        ids.dedup();
        ids.retain(|id| self.live(to, *id).is_some());
        ids
    }

    /// Records that `owner` (of a type that holds links) is associated with `ty` `id`
    /// (no-op when it already is).
    pub(crate) fn link(&mut self, owner_ty: ObjectType, owner: u64, ty: ObjectType, id: u64) {
        if let Some(record) = self.table_mut(owner_ty).get_mut(&owner)
            && !record.links.contains(&(ty, id))
        {
            record.links.push((ty, id));
        }
    }

    /// The properties HubSpot computes for `record`, by name.
    pub(crate) fn calculated(&self, ty: ObjectType, record: &Record) -> Vec<(String, String)> {
        let mut out = Vec::new();
        match ty {
            ObjectType::Deals => {
                let stage = record.property("dealstage");
                let probability = record
                    .property("pipeline")
                    .and_then(pipeline)
                    .and_then(|p| p.stages.iter().find(|s| Some(s.0) == stage))
                    .map(|s| s.2);
                if let Some(p) = probability {
                    out.push(("hs_deal_stage_probability".into(), p.to_owned()));
                }
            }
            ObjectType::Leads => {
                let contact = self
                    .associations(ty, record, ObjectType::Contacts)
                    .first()
                    .and_then(|id| self.live(ObjectType::Contacts, *id));
                if let Some(c) = contact {
                    out.push(("hs_primary_contact_id".into(), c.id.to_string()));
                    for (from, to) in [
                        ("firstname", "hs_associated_contact_firstname"),
                        ("lastname", "hs_associated_contact_lastname"),
                        ("email", "hs_associated_contact_email"),
                    ] {
                        if let Some(v) = c.property(from) {
                            out.push((to.into(), v.to_owned()));
                        }
                    }
                }
                let company = self
                    .associations(ty, record, ObjectType::Companies)
                    .first()
                    .and_then(|id| self.live(ObjectType::Companies, *id));
                if let Some(c) = company {
                    for (from, to) in [
                        ("name", "hs_associated_company_name"),
                        ("domain", "hs_associated_company_domain"),
                    ] {
                        if let Some(v) = c.property(from) {
                            out.push((to.into(), v.to_owned()));
                        }
                    }
                }
            }
            _ => {}
        }
        out
    }

    /// `record` with its calculated properties filled in, as reads and searches see it.
    pub(crate) fn effective(&self, ty: ObjectType, record: &Record) -> Record {
        let mut out = record.clone();
        for (k, v) in self.calculated(ty, record) {
            out.properties.insert(k, v);
        }
        out
    }

    /// A record as reads return it: `selection` picks its properties and each type in
    /// `associations` adds its `associations.<type>.results` (left out when empty, as
    /// HubSpot does).
    pub(crate) fn render(
        &self,
        ty: ObjectType,
        record: &Record,
        selection: &Selection<'_>,
        associations: &[ObjectType],
    ) -> Value {
        let mut value = self.effective(ty, record).render(ty, selection);
        let mut block = Map::new();
        for &to in associations {
            if to == ty || block.contains_key(to.path()) {
                continue;
            }
            let ids = self.associations(ty, record, to);
            if ids.is_empty() {
                continue;
            }
            let label = ty.association_label(to);
            let results: Vec<Value> = ids
                .iter()
                .map(|id| json!({ "id": id.to_string(), "type": label }))
                .collect();
            block.insert(to.path().to_owned(), json!({ "results": results }));
        }
        if !block.is_empty() {
            value["associations"] = Value::Object(block);
        }
        value
    }

    pub(crate) fn seed() -> Store {
        let companies: BTreeMap<u64, Record> = (0..COMPANY_COUNT)
            .map(seed_company)
            .map(|r| (r.id, r))
            .collect();
        let contacts: BTreeMap<u64, Record> = (0..CONTACT_COUNT)
            .map(|i| seed_contact(i, &companies))
            .map(|r| (r.id, r))
            .collect();
        let deals: BTreeMap<u64, Record> = (0..DEAL_COUNT)
            .map(|i| seed_deal(i, &companies, &contacts))
            .map(|r| (r.id, r))
            .collect();
        let notes = (0..NOTE_COUNT)
            .map(|i| seed_note(i, &contacts, &deals))
            .map(|r| (r.id, r))
            .collect();
        let tasks = (0..TASK_COUNT)
            .map(|i| seed_task(i, &contacts, &deals))
            .map(|r| (r.id, r))
            .collect();
        let leads = (0..LEAD_COUNT)
            .map(|i| seed_lead(i, &contacts))
            .map(|r| (r.id, r))
            .collect();
        Store {
            tables: [contacts, companies, deals, notes, tasks, leads],
            next_ids: [
                FIRST_CONTACT_ID + CONTACT_COUNT,
                FIRST_COMPANY_ID + COMPANY_COUNT,
                FIRST_DEAL_ID + DEAL_COUNT,
                FIRST_NOTE_ID + NOTE_COUNT,
                FIRST_TASK_ID + TASK_COUNT,
                FIRST_LEAD_ID + LEAD_COUNT,
            ],
        }
    }
}

/// (name, domain, industry, city, country). Fictional companies on reserved `.example`
/// domains, with some non-ASCII names to exercise encoding paths.
#[rustfmt::skip]
const COMPANIES: [(&str, &str, &str, &str, &str); NAMED_COMPANY_COUNT as usize] = [
    ("Acme Corporation", "acme.example", "MACHINERY", "Springfield", "United States"),
    ("Globex", "globex.example", "COMPUTER_SOFTWARE", "Cypress Creek", "United States"),
    ("Initech", "initech.example", "INFORMATION_TECHNOLOGY_AND_SERVICES", "Austin", "United States"),
    ("Umbrella Health", "umbrella-health.example", "HOSPITAL_HEALTH_CARE", "Raccoon City", "United States"),
    ("Hooli", "hooli.example", "INTERNET", "Palo Alto", "United States"),
    ("Stark Industries", "stark.example", "DEFENSE_SPACE", "New York", "United States"),
    ("Wayne Enterprises", "wayne.example", "FINANCIAL_SERVICES", "Gotham", "United States"),
    ("Wonka Confectionery", "wonka.example", "FOOD_BEVERAGES", "Manchester", "United Kingdom"),
    ("Tyrell Biotech", "tyrell.example", "BIOTECHNOLOGY", "Los Angeles", "United States"),
    ("Cyberdyne Systems", "cyberdyne.example", "COMPUTER_HARDWARE", "Sunnyvale", "United States"),
    ("Soylent Foods", "soylent.example", "FOOD_PRODUCTION", "Chicago", "United States"),
    ("Vandelay Industries", "vandelay.example", "IMPORT_AND_EXPORT", "New York", "United States"),
    ("Massive Dynamic", "massive-dynamic.example", "RESEARCH", "Boston", "United States"),
    ("Aperture Science", "aperture.example", "RESEARCH", "Cleveland", "United States"),
    ("Black Mesa Labs", "blackmesa.example", "RESEARCH", "Albuquerque", "United States"),
    ("Oscorp", "oscorp.example", "CHEMICALS", "New York", "United States"),
    ("Pied Piper", "piedpiper.example", "COMPUTER_SOFTWARE", "Palo Alto", "United States"),
    ("Dunder Mifflin", "dundermifflin.example", "PAPER_FOREST_PRODUCTS", "Scranton", "United States"),
    ("Sterling Cooper", "sterlingcooper.example", "MARKETING_AND_ADVERTISING", "New York", "United States"),
    ("Nakatomi Trading", "nakatomi.example", "IMPORT_AND_EXPORT", "Tokyo", "Japan"),
    ("Bluth Company", "", "REAL_ESTATE", "Newport Beach", "United States"),
    ("Prestige Worldwide", "prestige-worldwide.example", "", "Los Angeles", "United States"),
    ("Gringotts Bank", "gringotts.example", "BANKING", "London", "United Kingdom"),
    ("Ollivanders", "ollivanders.example", "RETAIL", "London", "United Kingdom"),
    ("Société Générale de Café", "cafe-sgc.example", "FOOD_BEVERAGES", "Lyon", "France"),
    ("O'Reilly & Daughters", "oreilly-daughters.example", "PUBLISHING", "Dublin", "Ireland"),
    ("Müller Maschinenbau GmbH", "mueller-mb.example", "MACHINERY", "Stuttgart", "Germany"),
    ("Ünal Teknoloji A.Ş.", "unal-tek.example", "COMPUTER_SOFTWARE", "Istanbul", "Turkey"),
    ("Nordlys Energi AS", "nordlys.example", "RENEWABLES_ENVIRONMENT", "Bergen", "Norway"),
    ("Kowalski Logistics", "kowalski.example", "LOGISTICS_AND_SUPPLY_CHAIN", "Gdańsk", "Poland"),
    ("Saffron Analytics", "saffron.example", "INFORMATION_TECHNOLOGY_AND_SERVICES", "Bengaluru", "India"),
    ("Jacaranda Health", "jacaranda.example", "HOSPITAL_HEALTH_CARE", "Nairobi", "Kenya"),
    ("Southern Cross Insurance", "southerncross.example", "INSURANCE", "Sydney", "Australia"),
    ("Maple Leaf Robotics", "mapleleaf.example", "AUTOMOTIVE", "Toronto", "Canada"),
    ("Andes Mining Co", "andes.example", "MINING_METALS", "Santiago", "Chile"),
    ("Río Verde Agro", "rioverde.example", "FARMING", "Córdoba", "Argentina"),
    ("Tiger Bay Telecom", "tigerbay.example", "TELECOMMUNICATIONS", "Cardiff", "United Kingdom"),
    ("Lotus Education", "lotus-edu.example", "EDUCATION_MANAGEMENT", "Singapore", "Singapore"),
    ("Helvetia Precision", "helvetia.example", "MEDICAL_DEVICES", "Zürich", "Switzerland"),
    ("Baltic Amber Trading", "balticamber.example", "WHOLESALE", "Riga", "Latvia"),
    ("Kiwi Cloud Ltd", "kiwicloud.example", "INTERNET", "Wellington", "New Zealand"),
    ("Sahara Solar", "saharasolar.example", "RENEWABLES_ENVIRONMENT", "Marrakesh", "Morocco"),
    ("Fjord Fisheries", "fjord.example", "FISHERY", "Tromsø", "Norway"),
    ("Atlas Construction", "atlas-build.example", "CONSTRUCTION", "Denver", "United States"),
    ("Quantum Quokka Labs", "quokka.example", "BIOTECHNOLOGY", "Perth", "Australia"),
];

// Companies past the named table: 17 and 13 are coprime, so (k % 17, k % 13) names the 215
// generated companies uniquely, and no word here appears in the named table.
#[rustfmt::skip]
const GENERATED_PREFIXES: [&str; 17] = [
    "Amberline", "Brightwater", "Copperfield", "Driftwood", "Emberly", "Foxglove", "Granite Peak",
    "Harborview", "Ironbark", "Juniper", "Kestrel", "Lumière", "Moonstone", "Nørrebro",
    "Orchard Lane", "Přístav", "Quillon",
];

#[rustfmt::skip]
const GENERATED_SUFFIXES: [(&str, &str); 13] = [
    ("Analytics", "INFORMATION_TECHNOLOGY_AND_SERVICES"),
    ("Bakery", "FOOD_BEVERAGES"),
    ("Clinics", "HOSPITAL_HEALTH_CARE"),
    ("Dynamics", "COMPUTER_SOFTWARE"),
    ("Freight", "LOGISTICS_AND_SUPPLY_CHAIN"),
    ("Holdings", "FINANCIAL_SERVICES"),
    ("Labs", "RESEARCH"),
    ("Media", "MARKETING_AND_ADVERTISING"),
    ("Outfitters", "RETAIL"),
    ("Partners", "MANAGEMENT_CONSULTING"),
    ("Robotics", "AUTOMOTIVE"),
    ("Studios", "ENTERTAINMENT"),
    ("Works", "CONSTRUCTION"),
];

#[rustfmt::skip]
const GENERATED_PLACES: [(&str, &str); 11] = [
    ("Portland", "United States"), ("Leeds", "United Kingdom"), ("Lille", "France"),
    ("Aarhus", "Denmark"), ("Brno", "Czechia"), ("Kraków", "Poland"), ("Osaka", "Japan"),
    ("São Paulo", "Brazil"), ("Montréal", "Canada"), ("Auckland", "New Zealand"),
    ("Cape Town", "South Africa"),
];

/// Name, domain, industry, city and country of a company past the named table. Some have
/// no domain or no industry, like a few named ones.
fn generated_company(j: u64) -> (String, String, &'static str, &'static str, &'static str) {
    let k = j.saturating_sub(NAMED_COMPANY_COUNT);
    let index = |modulus: u64| usize::try_from(k % modulus).unwrap_or(0);
    let prefix = GENERATED_PREFIXES[index(17)];
    let (suffix, industry) = GENERATED_SUFFIXES[index(13)];
    let (city, country) = GENERATED_PLACES[index(11)];
    let name = format!("{prefix} {suffix}");
    let domain = if k % 23 == 5 {
        String::new()
    } else {
        let words: Vec<String> = name.split(' ').map(slug).collect();
        format!("{}.example", words.join("-"))
    };
    let industry = if k % 29 == 7 { "" } else { industry };
    (name, domain, industry, city, country)
}

// 52 and 53 are coprime, so (i % 52, i % 53) never repeats for the 260 seeded contacts:
// every generated name, and so every generated email, is unique.
#[rustfmt::skip]
const FIRST_NAMES: [&str; 52] = [
    "Ada", "Grace", "Alan", "Katherine", "Linus", "Margaret", "Dennis", "Barbara", "Ken", "Radia",
    "Tim", "Frances", "Donald", "Hedy", "John", "Sophie", "Guido", "Anita", "Bjarne", "Shafi",
    "Edsger", "Adele", "Niklaus", "Lynn", "Vint", "Joan", "Claude", "Mary", "Brian", "Evelyn",
    "Leslie", "Jean", "Fernando", "Carol", "Rob", "Susan", "Yukihiro", "Cynthia", "Larry", "Elizabeth",
    "James", "Annie", "Robert", "Kathleen", "Andrew", "Ruth", "Douglas", "Betty", "Marvin", "Judith",
    "Ivan", "Martha",
];

#[rustfmt::skip]
const LAST_NAMES: [&str; 53] = [
    "Lovelace", "Hopper", "Turing", "Johnson", "Torvalds", "Hamilton", "Ritchie", "Liskov",
    "Thompson", "Perlman", "Berners-Lee", "Allen", "Knuth", "Lamarr", "McCarthy", "Wilson",
    "van Rossum", "Borg", "Stroustrup", "Goldwasser", "Dijkstra", "Goldberg", "Wirth", "Conway",
    "Cerf", "Clarke", "Shannon", "Keller", "Kernighan", "Boyd", "Lamport", "Bartik",
    "Corbató", "Shaw", "Pike", "Kare", "Matsumoto", "Dwork", "Page", "Feinler",
    "Gosling", "Easley", "Tarjan", "Booth", "Tanenbaum", "Leach", "Engelbart", "Holberton",
    "Minsky", "Estrin", "Sutherland", "Cray", "Nguyen",
];

const JOB_TITLES: [&str; 12] = [
    "CTO",
    "VP Engineering",
    "Account Executive",
    "Marketing Manager",
    "Head of Sales",
    "Software Engineer",
    "Customer Success Manager",
    "Operations Director",
    "Product Manager",
    "CFO",
    "Data Analyst",
    "Office Manager",
];

const TIERS: [&str; 3] = ["gold", "silver", "bronze"];

fn at(base: (i32, u32, u32, u32), offset: Duration) -> DateTime<Utc> {
    let (y, m, d, h) = base;
    let start = Utc
        .with_ymd_and_hms(y, m, d, h, 0, 0)
        .single()
        .unwrap_or(DateTime::UNIX_EPOCH);
    start + offset
}

fn small(i: u64, modulus: u64) -> i64 {
    i64::try_from(i % modulus).unwrap_or(0)
}

fn index_of(i: u64, modulus: u64) -> usize {
    usize::try_from(i % modulus).unwrap_or(0)
}

const STREETS: [&str; 7] = [
    "Main Street",
    "Harbour Road",
    "Elm Avenue",
    "Station Lane",
    "Rue de la Paix",
    "Market Square",
    "Hauptstraße",
];

const US_STATES: [&str; 9] = ["MA", "CA", "NY", "TX", "WA", "IL", "CO", "OR", "GA"];

/// (city, state, zip, country) for contacts' addresses; some countries have no state.
#[rustfmt::skip]
const CONTACT_PLACES: [(&str, &str, &str, &str); 8] = [
    ("Cambridge", "MA", "02139", "United States"),
    ("Austin", "TX", "78701", "United States"),
    ("London", "", "EC1A 1BB", "United Kingdom"),
    ("Lyon", "", "69002", "France"),
    ("Toronto", "ON", "M5V 2T6", "Canada"),
    ("São Paulo", "SP", "01310-100", "Brazil"),
    ("Seattle", "WA", "98101", "United States"),
    ("Zürich", "", "8001", "Switzerland"),
];

fn seed_company(j: u64) -> Record {
    let (name, domain, industry, city, country) =
        match COMPANIES.get(usize::try_from(j).unwrap_or(usize::MAX)) {
            Some(&(name, domain, industry, city, country)) => {
                (name.to_owned(), domain.to_owned(), industry, city, country)
            }
            None => generated_company(j),
        };
    let id = FIRST_COMPANY_ID + j;
    // Named companies were created every 6 days; later ones every 3 days after them, so
    // every timestamp stays in the past.
    let days = if j < NAMED_COMPANY_COUNT {
        small(j, 1000) * 6
    } else {
        small(NAMED_COMPANY_COUNT, 1000) * 6 + small(j - NAMED_COMPANY_COUNT, 1000) * 3
    };
    let created = at(
        (2022, 1, 10, 9),
        Duration::days(days)
            + Duration::minutes(small(j, 1000) * 133)
            + Duration::milliseconds(small(j * 71, 1000)),
    );
    let modified = created
        + Duration::days(30 + small(j * 11, 400))
        + Duration::minutes(small(j * 17, 600))
        + Duration::milliseconds(small(j * 29, 1000));
    let employees =
        [5u64, 12, 48, 120, 250, 800, 1500, 5000, 12000][usize::try_from(j * 4 % 9).unwrap_or(0)];
    let mut p = BTreeMap::new();
    let mut set = |k: &str, v: String| {
        if !v.is_empty() {
            p.insert(k.to_owned(), v);
        }
    };
    // Most companies with a domain list their website too; some only the domain.
    if !domain.is_empty() && j % 6 != 3 {
        set("website", format!("https://www.{domain}"));
    }
    if j % 4 != 1 {
        let what = match industry {
            "" => "privately held business".to_owned(),
            i => format!("{} business", i.to_lowercase().replace('_', " ")),
        };
        set(
            "description",
            format!("{name} is a {what} based in {city}."),
        );
    }
    if j.is_multiple_of(3) {
        set(
            "address",
            format!("{} {}", 10 + (j * 37) % 890, STREETS[index_of(j, 7)]),
        );
        set("zip", format!("{:05}", 10_000 + (j * 7_919) % 89_999));
    }
    if country == "United States" && j % 3 != 2 {
        set("state", US_STATES[index_of(j, 9)].to_owned());
    }
    if j % 7 != 4 {
        let last_activity = modified
            - Duration::minutes(1 + small(j * 19, 600))
            - Duration::milliseconds(small(j * 3, 1000));
        set("notes_last_updated", iso_millis(last_activity));
    }
    set("name", name);
    set("domain", domain);
    set("industry", industry.to_owned());
    if j % 10 != 9 {
        set("numberofemployees", employees.to_string());
        set(
            "annualrevenue",
            (employees * (80_000 + j * 1_000)).to_string(),
        );
    }
    set(
        "phone",
        format!("+1 555-{:03}-{:04}", 200 + j, (j * 379) % 10_000),
    );
    set("city", city.to_owned());
    set("country", country.to_owned());
    if j % 8 != 5 {
        set("hubspot_owner_id", owner_id(j * 5).to_string());
    }
    set("createdate", iso_millis(created));
    set("hs_lastmodifieddate", iso_millis(modified));
    set("hs_object_id", id.to_string());
    Record {
        id,
        properties: p,
        archived_at: None,
        links: Vec::new(),
    }
}

/// Lower-case ASCII for email local parts: folds the accents used in the seed names and
/// drops anything else that is not alphanumeric or a hyphen.
fn slug(s: &str) -> String {
    s.chars()
        .filter_map(|c| {
            let folded = match c {
                'á' | 'à' | 'â' | 'ä' | 'Å' | 'å' | 'Á' => 'a',
                'é' | 'è' | 'ë' | 'É' => 'e',
                'í' | 'ï' => 'i',
                'ó' | 'ö' | 'ø' | 'Ö' => 'o',
                'ú' | 'ü' | 'Ü' => 'u',
                'ñ' => 'n',
                c => c,
            };
            (folded.is_ascii_alphanumeric() || folded == '-').then(|| folded.to_ascii_lowercase())
        })
        .collect()
}

fn seed_contact(i: u64, companies: &BTreeMap<u64, Record>) -> Record {
    let id = FIRST_CONTACT_ID + i;
    let mut first = Some(FIRST_NAMES[usize::try_from(i % 52).unwrap_or(0)].to_owned());
    let mut last = Some(LAST_NAMES[usize::try_from(i % 53).unwrap_or(0)].to_owned());
    let company_id = (i % 9 != 4).then(|| FIRST_COMPANY_ID + (i * 17) % NAMED_COMPANY_COUNT);
    let domain = company_id
        .and_then(|c| companies.get(&c))
        .and_then(|c| c.property("domain"))
        .unwrap_or("mail.example")
        .to_owned();
    let mut local: Option<String> = None;
    // Hand-picked edge cases a mapping layer must survive.
    match id {
        1013 => local = Some(String::new()), // no email at all
        1042 => {
            first = Some("Siobhán".into());
            last = Some("O'Brien".into());
            local = Some("siobhan.obrien".into());
        }
        1078 => {
            first = Some("Zoë".into());
            last = Some("Ångström-Müller".into());
            local = Some("zoe.angstrom-muller".into());
        }
        1100 => {
            first = Some("美咲".into());
            last = Some("佐藤".into());
            local = Some("misaki.sato".into());
        }
        1150 => {
            // Only an email: HubSpot allows contacts without a name.
            first = None;
            last = None;
        }
        1201 => {
            first = Some("Ana".into());
            last = Some("Souza".into());
            local = Some("Ana.Souza+crm".into());
        }
        1231 => {
            first = Some("Robert".into());
            last = Some("Smith, Jr.".into());
            local = Some("robert.smith.jr".into());
        }
        _ => {}
    }
    let email = match local {
        Some(l) if l.is_empty() => None,
        Some(l) => Some(format!("{l}@{domain}")),
        None => Some(format!(
            "{}.{}@{domain}",
            slug(FIRST_NAMES[usize::try_from(i % 52).unwrap_or(0)]),
            slug(LAST_NAMES[usize::try_from(i % 53).unwrap_or(0)]),
        )),
    };
    let created = at(
        (2023, 2, 1, 8),
        Duration::days(small(i, 1000))
            + Duration::seconds(small(i, 1000) * (3 * 3600 + 17 * 60 + 11))
            + Duration::milliseconds(small(i * 37, 1000)),
    );
    let modified = created
        + Duration::days(1 + small(i * 13, 120))
        + Duration::minutes(small(i * 7, 60))
        + Duration::milliseconds(small(i * 53, 1000));

    let mut p = BTreeMap::new();
    let mut set = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            p.insert(k.to_owned(), v);
        }
    };
    set("firstname", first);
    set("lastname", last);
    set("email", email);
    set(
        "phone",
        (i % 6 != 5).then(|| format!("+1 617-555-{:04}", (i * 7919) % 10_000)),
    );
    set(
        "jobtitle",
        (i % 11 != 6).then(|| JOB_TITLES[usize::try_from(i % 12).unwrap_or(0)].to_owned()),
    );
    set("associatedcompanyid", company_id.map(|c| c.to_string()));
    set(
        "customer_tier",
        (i % 7 != 3).then(|| TIERS[usize::try_from(i % 3).unwrap_or(0)].to_owned()),
    );
    set(
        "hubspot_owner_id",
        (i % 10 != 7).then(|| owner_id(i * 3).to_string()),
    );
    // Not in the provider file's property list: an override asks for it when it wants it.
    set(
        "lifecyclestage",
        Some(LIFECYCLE_STAGES[index_of(i, 6)].to_owned()),
    );
    // A postal address for most; some have only a city and country, some none.
    if i % 5 != 2 {
        let (city, state, zip, country) = CONTACT_PLACES[index_of(i, 8)];
        if i % 5 != 4 {
            set(
                "address",
                Some(format!(
                    "{} {}",
                    1 + (i * 53) % 998,
                    STREETS[index_of(i * 3, 7)]
                )),
            );
            set("zip", (!zip.is_empty()).then(|| zip.to_owned()));
            set("state", (!state.is_empty()).then(|| state.to_owned()));
        }
        set("city", Some(city.to_owned()));
        set("country", Some(country.to_owned()));
    }
    set(
        "notes_last_updated",
        (i % 6 != 1).then(|| {
            iso_millis(
                modified
                    - Duration::minutes(1 + small(i * 3, 600))
                    - Duration::milliseconds(small(i * 7, 1000)),
            )
        }),
    );
    set("createdate", Some(iso_millis(created)));
    set("lastmodifieddate", Some(iso_millis(modified)));
    set("hs_object_id", Some(id.to_string()));
    Record {
        id,
        properties: p,
        archived_at: None,
        links: Vec::new(),
    }
}

// ---------------------------------------------------------------------------------------
// Owners (`/crm/v3/owners`)

pub(crate) const FIRST_OWNER_ID: u64 = 80_410_001;
/// The sandbox OAuth grant's `user_id` is the first owner's user.
pub(crate) const FIRST_OWNER_USER_ID: u64 = 66_180_001;
/// Owners past this index are deactivated users: listed only with `archived=true`, and
/// never the owner of a seeded record.
const ACTIVE_OWNER_COUNT: u64 = 14;

/// (first name, last name); emails are `first.last@sandbox-crm.example`.
#[rustfmt::skip]
const OWNERS: [(&str, &str); 16] = [
    ("Morgan", "Reyes"), ("Priya", "Raman"), ("Tomás", "Ferreira"), ("Hannah", "Schultz"),
    ("Kwame", "Mensah"), ("Yuki", "Tanaka"), ("Olivia", "Byrne"), ("Mateo", "Rossi"),
    ("Fatima", "Haddad"), ("Lars", "Nilsson"), ("Chloé", "Dubois"), ("Samuel", "Okafor"),
    ("Ingrid", "Halvorsen"), ("Diego", "Alvarez"), ("Nadia", "Petrova"), ("Owen", "Gallagher"),
];

#[derive(Clone, Debug)]
pub(crate) struct Owner {
    pub id: u64,
    pub email: String,
    pub first_name: &'static str,
    pub last_name: &'static str,
    pub user_id: u64,
    pub created_at: String,
    pub updated_at: String,
    pub archived: bool,
}

impl Owner {
    /// The `PublicOwner` shape: `userId` is a number, `id` a string.
    pub(crate) fn render(&self) -> Value {
        json!({
            "id": self.id.to_string(),
            "email": self.email,
            "type": "PERSON",
            "firstName": self.first_name,
            "lastName": self.last_name,
            "userId": self.user_id,
            "userIdIncludingInactive": self.user_id,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "archived": self.archived,
        })
    }
}

/// The active owner a seeded record at position `n` belongs to.
fn owner_id(n: u64) -> u64 {
    FIRST_OWNER_ID + n % ACTIVE_OWNER_COUNT
}

/// Every owner, active and deactivated, ascending by id.
pub(crate) fn owners() -> Vec<Owner> {
    (0u64..)
        .zip(OWNERS)
        .map(|(k, (first, last))| {
            let created = at(
                (2021, 9, 6, 9),
                Duration::days(small(k, 1000) * 19) + Duration::milliseconds(small(k * 211, 1000)),
            );
            let updated = created
                + Duration::days(200 + small(k * 37, 300))
                + Duration::milliseconds(small(k * 97, 1000));
            Owner {
                id: FIRST_OWNER_ID + k,
                email: format!("{}.{}@sandbox-crm.example", slug(first), slug(last)),
                first_name: first,
                last_name: last,
                user_id: FIRST_OWNER_USER_ID + k,
                created_at: iso_millis(created),
                updated_at: iso_millis(updated),
                archived: k >= ACTIVE_OWNER_COUNT,
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Deal pipelines (`/crm/v3/pipelines/deals`)

pub(crate) const DEFAULT_PIPELINE: &str = "default";
pub(crate) const RENEWALS_PIPELINE: &str = "39820477";

/// (id, label, probability, is closed)
type Stage = (&'static str, &'static str, &'static str, bool);

pub(crate) struct Pipeline {
    pub id: &'static str,
    pub label: &'static str,
    pub display_order: u32,
    pub stages: &'static [Stage],
    /// HubSpot's built-in Sales Pipeline reports the epoch as its timestamps.
    pub created_at: &'static str,
    pub updated_at: &'static str,
}

/// HubSpot's default Sales Pipeline, as every portal has it.
const SALES_STAGES: [Stage; 7] = [
    (
        "appointmentscheduled",
        "Appointment Scheduled",
        "0.2",
        false,
    ),
    ("qualifiedtobuy", "Qualified To Buy", "0.4", false),
    (
        "presentationscheduled",
        "Presentation Scheduled",
        "0.6",
        false,
    ),
    (
        "decisionmakerboughtin",
        "Decision Maker Bought-In",
        "0.8",
        false,
    ),
    ("contractsent", "Contract Sent", "0.9", false),
    ("closedwon", "Closed Won", "1.0", true),
    ("closedlost", "Closed Lost", "0.0", true),
];

/// A custom pipeline: HubSpot gives custom pipelines and their stages numeric ids.
const RENEWAL_STAGES: [Stage; 5] = [
    ("39820478", "Renewal Due", "0.3", false),
    ("39820479", "In Negotiation", "0.6", false),
    ("39820480", "Verbal Commit", "0.9", false),
    ("39820481", "Renewed", "1.0", true),
    ("39820482", "Churned", "0.0", true),
];

pub(crate) static PIPELINES: [Pipeline; 2] = [
    Pipeline {
        id: DEFAULT_PIPELINE,
        label: "Sales Pipeline",
        display_order: 0,
        stages: &SALES_STAGES,
        created_at: "1970-01-01T00:00:00Z",
        updated_at: "1970-01-01T00:00:00Z",
    },
    Pipeline {
        id: RENEWALS_PIPELINE,
        label: "Renewals",
        display_order: 1,
        stages: &RENEWAL_STAGES,
        created_at: "2022-03-14T09:26:53.589Z",
        updated_at: "2023-11-02T16:40:12.104Z",
    },
];

pub(crate) fn pipeline(id: &str) -> Option<&'static Pipeline> {
    PIPELINES.iter().find(|p| p.id == id)
}

impl Pipeline {
    pub(crate) fn has_stage(&self, stage: &str) -> bool {
        self.stages.iter().any(|(id, ..)| *id == stage)
    }

    pub(crate) fn stage_ids(&self) -> Vec<&'static str> {
        self.stages.iter().map(|(id, ..)| *id).collect()
    }

    pub(crate) fn render_stages(&self) -> Vec<Value> {
        (0u32..)
            .zip(self.stages)
            .map(|(order, (id, label, probability, closed))| {
                json!({
                    "id": id,
                    "label": label,
                    "displayOrder": order,
                    "metadata": {
                        "isClosed": if *closed { "true" } else { "false" },
                        "probability": probability,
                    },
                    "createdAt": self.created_at,
                    "updatedAt": self.updated_at,
                    "archived": false,
                })
            })
            .collect()
    }

    pub(crate) fn render(&self) -> Value {
        json!({
            "id": self.id,
            "label": self.label,
            "displayOrder": self.display_order,
            "stages": self.render_stages(),
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "archived": false,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Deals

const PRODUCTS: [&str; 9] = [
    "Platform License",
    "Support Renewal",
    "Onboarding Package",
    "Seat Expansion",
    "Analytics Add-on",
    "Pilot",
    "Enterprise Upgrade",
    "Data Migration",
    "Training Days",
];

/// Deal `i`: most belong to a named company and to 1-3 of that company's own contacts;
/// every fifth belongs to a generated company and to contacts spread over the seed. Every
/// fourth is in the Renewals pipeline; some have no amount; a fifth are in EUR.
fn seed_deal(
    i: u64,
    companies: &BTreeMap<u64, Record>,
    contacts: &BTreeMap<u64, Record>,
) -> Record {
    let id = FIRST_DEAL_ID + i;
    let company = if i % 5 == 4 {
        FIRST_COMPANY_ID + NAMED_COMPANY_COUNT + (i * 3) % (COMPANY_COUNT - NAMED_COMPANY_COUNT)
    } else {
        FIRST_COMPANY_ID + (i * 11) % NAMED_COMPANY_COUNT
    };
    let wanted = 1 + i % 3;
    let own = company.to_string();
    let staff: Vec<u64> = contacts
        .values()
        .filter(|c| c.property("associatedcompanyid") == Some(own.as_str()))
        .map(|c| c.id)
        .collect();
    let mut people: Vec<u64> = if staff.is_empty() {
        (0..wanted)
            .map(|k| FIRST_CONTACT_ID + (i * 13 + k * 89) % CONTACT_COUNT)
            .collect()
    } else {
        let start = usize::try_from(i).unwrap_or(0) % staff.len();
        staff
            .iter()
            .cycle()
            .skip(start)
            .take(usize::try_from(wanted).unwrap_or(1).min(staff.len()))
            .copied()
            .collect()
    };
    people.sort_unstable();
    people.dedup();

    let (pipeline, stages): (&str, &[Stage]) = if i % 4 == 3 {
        (RENEWALS_PIPELINE, &RENEWAL_STAGES)
    } else {
        (DEFAULT_PIPELINE, &SALES_STAGES)
    };
    let stage_index = usize::try_from(i * 5 + i / 7).unwrap_or(0) % stages.len().max(1);
    let stage = stages.get(stage_index).map_or("", |s| s.0);

    let company_name = companies
        .get(&company)
        .and_then(|c| c.property("name"))
        .unwrap_or("Unknown");
    let product = PRODUCTS[usize::try_from(i % 9).unwrap_or(0)];
    let name = format!("{company_name} - {product}");
    let amount = (i % 8 != 5).then(|| {
        let whole = 2_500 + ((i * 37) % 120) * 250;
        let cents = if i % 13 == 2 { 50 } else { 0 };
        format!("{whole}.{cents:02}")
    });
    let currency = if i % 5 == 2 { "EUR" } else { "USD" };
    let created = at(
        (2023, 6, 1, 10),
        Duration::days(small(i, 1000) * 2)
            + Duration::minutes(small(i * 41, 600))
            + Duration::milliseconds(small(i * 59, 1000)),
    );
    let modified = created
        + Duration::days(2 + small(i * 7, 90))
        + Duration::minutes(small(i * 13, 600))
        + Duration::milliseconds(small(i * 31, 1000));
    let close = at(
        (2023, 7, 1, 0),
        Duration::days(small(i, 1000) * 2 + small(i * 17, 120)),
    );

    let mut p = BTreeMap::new();
    let mut set = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            p.insert(k.to_owned(), v);
        }
    };
    set("dealname", Some(name));
    set("amount", amount);
    set("deal_currency_code", Some(currency.to_owned()));
    set("pipeline", Some(pipeline.to_owned()));
    set("dealstage", Some(stage.to_owned()));
    set("closedate", Some(iso_millis(close)));
    let deal_type = if pipeline == RENEWALS_PIPELINE || i % 3 == 1 {
        "existingbusiness"
    } else {
        "newbusiness"
    };
    set("dealtype", Some(deal_type.to_owned()));
    set("hubspot_owner_id", Some(owner_id(i).to_string()));
    set(
        "description",
        (!i.is_multiple_of(3)).then(|| {
            format!(
                "{product} for {company_name}, owned by the {} team.",
                ["sales", "renewals", "partnerships"][index_of(i, 3)]
            )
        }),
    );
    set(
        "notes_last_updated",
        (i % 5 != 3).then(|| {
            iso_millis(
                modified
                    - Duration::minutes(1 + small(i * 11, 600))
                    - Duration::milliseconds(small(i * 13, 1000)),
            )
        }),
    );
    set("createdate", Some(iso_millis(created)));
    set("hs_lastmodifieddate", Some(iso_millis(modified)));
    set("hs_object_id", Some(id.to_string()));
    let mut links = vec![(ObjectType::Companies, company)];
    links.extend(people.into_iter().map(|c| (ObjectType::Contacts, c)));
    Record {
        id,
        properties: p,
        archived_at: None,
        links,
    }
}

// ---------------------------------------------------------------------------------------
// Notes, tasks and leads

/// The contact an engagement or lead at position `i` is about (stride `step`), its
/// primary company, and (when `with_deal`) the lowest deal that contact is on.
fn about(
    i: u64,
    step: u64,
    contacts: &BTreeMap<u64, Record>,
    deals: Option<&BTreeMap<u64, Record>>,
) -> Vec<(ObjectType, u64)> {
    let contact = FIRST_CONTACT_ID + (i * step) % CONTACT_COUNT;
    let mut links = vec![(ObjectType::Contacts, contact)];
    if let Some(company) = contacts
        .get(&contact)
        .and_then(|c| c.property("associatedcompanyid"))
        .and_then(|c| c.parse::<u64>().ok())
    {
        links.push((ObjectType::Companies, company));
    }
    if let Some(deal) = deals.and_then(|deals| {
        deals
            .values()
            .find(|d| d.links.contains(&(ObjectType::Contacts, contact)))
    }) {
        links.push((ObjectType::Deals, deal.id));
    }
    links
}

fn contact_name(contacts: &BTreeMap<u64, Record>, links: &[(ObjectType, u64)]) -> String {
    links
        .iter()
        .find(|(ty, _)| *ty == ObjectType::Contacts)
        .and_then(|(_, id)| contacts.get(id))
        .map(|c| {
            let name: Vec<&str> = [c.property("firstname"), c.property("lastname")]
                .into_iter()
                .flatten()
                .collect();
            if name.is_empty() {
                c.property("email").unwrap_or("a contact").to_owned()
            } else {
                name.join(" ")
            }
        })
        .unwrap_or_else(|| "the account".to_owned())
}

const NOTE_TOPICS: [&str; 8] = [
    "Discussed the renewal timeline",
    "Sent over the security questionnaire",
    "Walked through the pricing tiers",
    "Asked for a reference customer",
    "Shared the onboarding plan",
    "Flagged a billing question",
    "Agreed next steps after the demo",
    "Followed up on the pilot results",
];

/// Note `i`: about a contact (every ninth only about a company), often its company, every
/// third also about that contact's deal. HubSpot stores the body as HTML.
fn seed_note(i: u64, contacts: &BTreeMap<u64, Record>, deals: &BTreeMap<u64, Record>) -> Record {
    let id = FIRST_NOTE_ID + i;
    let mut links = about(i, 7, contacts, i.is_multiple_of(3).then_some(deals));
    if i % 3 == 2 {
        links.retain(|(ty, _)| *ty != ObjectType::Companies);
    }
    let who = contact_name(contacts, &links);
    if i % 9 == 8 {
        links.retain(|(ty, _)| *ty != ObjectType::Contacts);
        if links.is_empty() {
            links.push((
                ObjectType::Companies,
                FIRST_COMPANY_ID + (i * 3) % COMPANY_COUNT,
            ));
        }
    }
    let topic = NOTE_TOPICS[index_of(i, 8)];
    let body = match i {
        // Edge cases: markup and non-ASCII text survive the round trip.
        4 => "<p>Call notes: <strong>budget approved</strong> &amp; legal review next week.</p>"
            .to_owned(),
        5 => "<p>Réunion à Zürich – «très positif» ✓</p>".to_owned(),
        _ => format!("<p>{topic} with {who}.</p>"),
    };
    let created = at(
        (2024, 1, 8, 9),
        Duration::days(small(i, 1000))
            + Duration::minutes(small(i * 29, 600))
            + Duration::milliseconds(small(i * 43, 1000)),
    );
    let timestamp = created - Duration::minutes(small(i * 17, 120));
    let modified = created
        + Duration::days(small(i * 5, 30))
        + Duration::minutes(1 + small(i * 23, 600))
        + Duration::milliseconds(small(i * 61, 1000));
    let mut p = BTreeMap::new();
    p.insert("hs_note_body".to_owned(), body);
    p.insert("hs_timestamp".to_owned(), iso_millis(timestamp));
    if i % 11 != 10 {
        p.insert("hubspot_owner_id".to_owned(), owner_id(i * 7).to_string());
    }
    p.insert("hs_createdate".to_owned(), iso_millis(created));
    p.insert("hs_lastmodifieddate".to_owned(), iso_millis(modified));
    p.insert("hs_object_id".to_owned(), id.to_string());
    Record {
        id,
        properties: p,
        archived_at: None,
        links,
    }
}

const TASK_SUBJECTS: [&str; 7] = [
    "Call",
    "Send proposal to",
    "Book a demo with",
    "Follow up with",
    "Prepare QBR for",
    "Confirm contract terms with",
    "Email case study to",
];

/// Task `i`: statuses cycle through all five of HubSpot's; completed ones carry a
/// completion date; due dates spread over 2024-2025.
fn seed_task(i: u64, contacts: &BTreeMap<u64, Record>, deals: &BTreeMap<u64, Record>) -> Record {
    let id = FIRST_TASK_ID + i;
    let mut links = about(i, 13, contacts, (i % 4 == 1).then_some(deals));
    if i % 4 == 3 {
        links.retain(|(ty, _)| *ty != ObjectType::Companies);
    }
    let who = contact_name(contacts, &links);
    let status = TASK_STATUSES[index_of(i * 3 + i / 5, 5)];
    let created = at(
        (2024, 2, 1, 8),
        Duration::days(small(i, 1000) * 2)
            + Duration::minutes(small(i * 31, 600))
            + Duration::milliseconds(small(i * 47, 1000)),
    );
    let due = at(
        (2024, 2, 5, 9),
        Duration::days(small(i, 1000) * 2 + small(i * 7, 20)),
    );
    let modified = created
        + Duration::days(1 + small(i * 3, 25))
        + Duration::minutes(small(i * 19, 600))
        + Duration::milliseconds(small(i * 67, 1000));
    let mut p = BTreeMap::new();
    p.insert(
        "hs_task_subject".to_owned(),
        format!("{} {who}", TASK_SUBJECTS[index_of(i, 7)]),
    );
    if i % 5 != 4 {
        p.insert(
            "hs_task_body".to_owned(),
            format!("<p>Task {} of the account plan.</p>", i + 1),
        );
    }
    p.insert("hs_task_status".to_owned(), status.to_owned());
    if status == "COMPLETED" {
        let done = modified - Duration::minutes(1 + small(i * 7, 300));
        p.insert("hs_task_completion_date".to_owned(), iso_millis(done));
    }
    p.insert(
        "hs_task_priority".to_owned(),
        TASK_PRIORITIES[index_of(i, 4)].to_owned(),
    );
    p.insert(
        "hs_task_type".to_owned(),
        TASK_TYPES[index_of(i * 2, 3)].to_owned(),
    );
    p.insert("hs_timestamp".to_owned(), iso_millis(due));
    p.insert(
        "hubspot_owner_id".to_owned(),
        owner_id(i * 5 + 1).to_string(),
    );
    p.insert("hs_createdate".to_owned(), iso_millis(created));
    p.insert("hs_lastmodifieddate".to_owned(), iso_millis(modified));
    p.insert("hs_object_id".to_owned(), id.to_string());
    Record {
        id,
        properties: p,
        archived_at: None,
        links,
    }
}

/// Lead `i`: every lead is about an existing contact (HubSpot requires one) and, when
/// the contact has a company, that company; stages cycle through the default lead
/// pipeline.
fn seed_lead(i: u64, contacts: &BTreeMap<u64, Record>) -> Record {
    let id = FIRST_LEAD_ID + i;
    let mut links = about(i, 11, contacts, None);
    if i % 6 == 5 {
        links.retain(|(ty, _)| *ty != ObjectType::Companies);
    }
    let name = contact_name(contacts, &links);
    let created = at(
        (2024, 3, 4, 10),
        Duration::days(small(i, 1000) * 2)
            + Duration::minutes(small(i * 37, 600))
            + Duration::milliseconds(small(i * 53, 1000)),
    );
    let modified = created
        + Duration::days(1 + small(i * 7, 40))
        + Duration::minutes(small(i * 11, 600))
        + Duration::milliseconds(small(i * 71, 1000));
    let mut p = BTreeMap::new();
    p.insert("hs_lead_name".to_owned(), name);
    p.insert("hs_pipeline".to_owned(), LEAD_PIPELINE.to_owned());
    p.insert(
        "hs_pipeline_stage".to_owned(),
        LEAD_STAGES[index_of(i + i / 7, 5)].0.to_owned(),
    );
    p.insert(
        "hs_lead_type".to_owned(),
        LEAD_TYPES[index_of(i, 3)].to_owned(),
    );
    if i % 4 != 2 {
        p.insert(
            "hs_lead_label".to_owned(),
            LEAD_LABELS[index_of(i * 2, 3)].to_owned(),
        );
    }
    if i % 8 != 7 {
        p.insert(
            "hubspot_owner_id".to_owned(),
            owner_id(i * 3 + 2).to_string(),
        );
    }
    p.insert("createdate".to_owned(), iso_millis(created));
    p.insert("hs_lastmodifieddate".to_owned(), iso_millis(modified));
    p.insert("hs_object_id".to_owned(), id.to_string());
    Record {
        id,
        properties: p,
        archived_at: None,
        links,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn seed_is_deterministic_and_emails_are_unique() {
        let a = Store::seed();
        let b = Store::seed();
        for ty in ObjectType::ALL {
            let left: Vec<Value> = a
                .table(ty)
                .values()
                .map(|r| r.render(ty, &Selection::Schema))
                .collect();
            let right: Vec<Value> = b
                .table(ty)
                .values()
                .map(|r| r.render(ty, &Selection::Schema))
                .collect();
            assert_eq!(left, right);
        }
        let emails: Vec<&str> = a
            .table(ObjectType::Contacts)
            .values()
            .filter_map(|r| r.property("email"))
            .collect();
        let unique: HashSet<String> = emails.iter().map(|e| e.to_lowercase()).collect();
        assert_eq!(emails.len(), unique.len());
        assert_eq!(emails.len(), usize::try_from(CONTACT_COUNT - 1).unwrap());
    }

    #[test]
    fn companies_are_unique_and_every_association_resolves() {
        let store = Store::seed();
        let companies = store.table(ObjectType::Companies);
        assert_eq!(companies.len(), usize::try_from(COMPANY_COUNT).unwrap());
        let names: HashSet<&str> = companies
            .values()
            .filter_map(|c| c.property("name"))
            .collect();
        assert_eq!(names.len(), companies.len());
        let domains: Vec<&str> = companies
            .values()
            .filter_map(|c| c.property("domain"))
            .collect();
        let unique: HashSet<&&str> = domains.iter().collect();
        assert_eq!(unique.len(), domains.len());
        assert!(
            domains.len() < companies.len(),
            "some companies have no domain"
        );
        for contact in store.table(ObjectType::Contacts).values() {
            if let Some(id) = contact.property("associatedcompanyid") {
                let id: u64 = id.parse().unwrap();
                assert!(store.live(ObjectType::Companies, id).is_some(), "{id}");
            }
        }
        // The original 45 are untouched by the extension.
        assert_eq!(companies[&5001].property("name"), Some("Acme Corporation"));
        assert_eq!(
            companies[&5045].property("name"),
            Some("Quantum Quokka Labs")
        );
        assert_eq!(
            companies[&5046].property("name"),
            Some("Amberline Analytics")
        );
    }

    #[test]
    fn deals_link_to_live_records_in_their_pipeline() {
        let store = Store::seed();
        let deals = store.table(ObjectType::Deals);
        assert_eq!(deals.len(), usize::try_from(DEAL_COUNT).unwrap());
        let owners: HashSet<String> = owners()
            .iter()
            .filter(|o| !o.archived)
            .map(|o| o.id.to_string())
            .collect();
        assert!(owners.len() >= 12);
        let mut pipelines = HashSet::new();
        for deal in deals.values() {
            let companies = store.associations(ObjectType::Deals, deal, ObjectType::Companies);
            assert_eq!(companies.len(), 1, "{}", deal.id);
            let contacts = store.associations(ObjectType::Deals, deal, ObjectType::Contacts);
            assert!((1..=3).contains(&contacts.len()), "{}", deal.id);
            assert_eq!(deal.links.len(), 1 + contacts.len());
            let pipe = pipeline(deal.property("pipeline").unwrap()).unwrap();
            assert!(pipe.has_stage(deal.property("dealstage").unwrap()));
            pipelines.insert(pipe.id);
            assert!(owners.contains(deal.property("hubspot_owner_id").unwrap()));
            // The reverse direction sees the deal.
            let company = store.live(ObjectType::Companies, companies[0]).unwrap();
            assert!(
                store
                    .associations(ObjectType::Companies, company, ObjectType::Deals)
                    .contains(&deal.id)
            );
        }
        assert_eq!(pipelines.len(), 2);
        assert!(deals.values().any(|d| d.property("amount").is_none()));
        assert!(
            deals
                .values()
                .any(|d| d.property("deal_currency_code") == Some("EUR"))
        );
        for ty in [ObjectType::Contacts, ObjectType::Companies] {
            for record in store.table(ty).values() {
                if let Some(owner) = record.property("hubspot_owner_id") {
                    assert!(owners.contains(owner), "{owner}");
                }
            }
        }
    }

    #[test]
    fn engagements_and_leads_link_to_live_records() {
        let store = Store::seed();
        for ty in [ObjectType::Notes, ObjectType::Tasks, ObjectType::Leads] {
            let table = store.table(ty);
            assert_eq!(table.len(), 260, "{ty:?}");
            for record in table.values() {
                assert!(!record.links.is_empty(), "{ty:?} {}", record.id);
                for (other, id) in &record.links {
                    assert!(
                        store.live(*other, *id).is_some(),
                        "{ty:?} {} -> {id}",
                        record.id
                    );
                    // The other side sees the association too.
                    let other_record = store.live(*other, *id).unwrap();
                    assert!(
                        store
                            .associations(*other, other_record, ty)
                            .contains(&record.id)
                    );
                }
                let owner = record.property("hubspot_owner_id");
                assert!(owner.is_none_or(|o| o.parse::<u64>().is_ok()));
            }
        }
        for lead in store.table(ObjectType::Leads).values() {
            let calculated: BTreeMap<String, String> = store
                .calculated(ObjectType::Leads, lead)
                .into_iter()
                .collect();
            assert!(
                calculated.contains_key("hs_primary_contact_id"),
                "{}",
                lead.id
            );
        }
        let statuses: std::collections::BTreeSet<&str> = store
            .table(ObjectType::Tasks)
            .values()
            .filter_map(|t| t.property("hs_task_status"))
            .collect();
        assert_eq!(statuses.len(), TASK_STATUSES.len());
        for task in store.table(ObjectType::Tasks).values() {
            assert_eq!(
                task.property("hs_task_status") == Some("COMPLETED"),
                task.property("hs_task_completion_date").is_some(),
                "{}",
                task.id
            );
        }
    }

    #[test]
    fn datetimes_parse_as_iso_or_epoch_millis() {
        assert_eq!(parse_datetime("1704067200000"), Some(1_704_067_200_000));
        assert_eq!(
            parse_datetime("2024-01-01T00:00:00Z"),
            Some(1_704_067_200_000)
        );
        assert_eq!(
            parse_datetime("2024-01-01T01:00:00.000+01:00"),
            Some(1_704_067_200_000)
        );
        assert_eq!(parse_datetime("2024-01-01"), Some(1_704_067_200_000));
        assert_eq!(parse_datetime("yesterday"), None);
        assert_eq!(parse_datetime(""), None);
    }

    #[test]
    fn every_seeded_property_is_in_the_schema() {
        let store = Store::seed();
        for ty in ObjectType::ALL {
            for record in store.table(ty).values() {
                for name in record.properties.keys() {
                    assert!(ty.is_known(name), "{name} missing from the {ty:?} schema");
                }
                assert!(
                    record.property(ty.created_property())
                        < record.property(ty.modified_property())
                );
            }
        }
    }
}
