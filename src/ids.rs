//! Global ids: opaque to clients, they carry the linked account, the resource and the
//! vendor's id, so two accounts never share an id and `node(id:)` can refetch any record.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalId {
    pub account: String,
    pub resource: String,
    pub remote_id: String,
}

impl GlobalId {
    pub fn encode(account: &str, resource: &str, remote_id: &str) -> String {
        URL_SAFE_NO_PAD.encode(format!("{account}:{resource}:{remote_id}"))
    }

    pub fn decode(id: &str) -> Option<GlobalId> {
        let bytes = URL_SAFE_NO_PAD.decode(id).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let mut parts = text.splitn(3, ':');
        let (account, resource, remote_id) = (parts.next()?, parts.next()?, parts.next()?);
        if account.is_empty() || resource.is_empty() || remote_id.is_empty() {
            return None;
        }
        Some(GlobalId {
            account: account.into(),
            resource: resource.into(),
            remote_id: remote_id.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_ids_containing_colons() {
        let id = GlobalId::encode("acc", "contacts", "a:b");
        assert_eq!(GlobalId::decode(&id).unwrap().remote_id, "a:b");
        assert_ne!(id, GlobalId::encode("acc2", "contacts", "a:b"));
        assert!(GlobalId::decode("not base64!").is_none());
    }
}
