//! Relay cursors (`tessera::engine::CursorCodec`): a client sends any text as `after:`.
//!
//! Input, one field a line (missing lines are empty; an empty filter or state is none):
//!
//! ```text
//! cursor text to decode
//! account
//! resource
//! filter
//! state
//! offset
//! page size
//! ```
//!
//! Checks, besides "no panic":
//! - a decoded cursor is one this codec issues, byte for byte (no forged, edited or
//!   re-encoded cursor is accepted), for the account, resource and filter asked;
//! - another key never accepts it;
//! - a position encoded then decoded round-trips (unless its page size is 0, which decode
//!   refuses), and the cursor is refused for another account, resource or filter, with
//!   another key, and after any one character is changed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use tessera::engine::{CursorCodec, Position};

/// The key the seed cursors were issued with (the codec's unit tests use it too).
const SEED_KEY: [u8; 32] = [7; 32];

fn field(lines: &[&str], i: usize) -> String {
    lines.get(i).copied().unwrap_or_default().to_string()
}

fn optional(lines: &[&str], i: usize) -> Option<String> {
    Some(field(lines, i)).filter(|s| !s.is_empty())
}

fn number(lines: &[&str], i: usize) -> usize {
    let text = field(lines, i);
    text.trim()
        .parse()
        .unwrap_or_else(|_| text.len().wrapping_mul(7919))
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let lines: Vec<&str> = text.split('\n').collect();
    let cursor = field(&lines, 0);
    let account = field(&lines, 1);
    let resource = field(&lines, 2);
    let filter = optional(&lines, 3);
    let codec = CursorCodec::new(SEED_KEY);
    // Another key, derived from the input so it differs from the seed key.
    let mut other_key: [u8; 32] = Sha256::digest(data).into();
    if other_key == SEED_KEY {
        other_key[0] ^= 1;
    }
    let other = CursorCodec::new(other_key);

    // Arbitrary text as a client would send it.
    if let Ok(p) = codec.decode(&cursor, &account, &resource, filter.as_deref()) {
        assert_eq!(p.account, account);
        assert_eq!(p.resource, resource);
        assert_eq!(p.filter, filter);
        assert!(p.page_size > 0);
        assert_eq!(
            codec.encode(&p),
            cursor,
            "an accepted cursor must be exactly one the codec issues"
        );
    }
    assert!(
        other
            .decode(&cursor, &account, &resource, filter.as_deref())
            .is_err(),
        "a cursor made with another key was accepted"
    );

    // A position of the input's fields, encoded then decoded.
    let position = Position {
        account: account.clone(),
        resource: resource.clone(),
        state: optional(&lines, 4),
        offset: number(&lines, 5),
        page_size: number(&lines, 6),
        filter: filter.clone(),
    };
    let issued = codec.encode(&position);
    let back = codec.decode(&issued, &account, &resource, filter.as_deref());
    if position.page_size == 0 {
        assert!(back.is_err(), "a page size of 0 was accepted");
        return;
    }
    assert_eq!(
        back.ok().as_ref(),
        Some(&position),
        "round trip of {issued}"
    );
    if issued == cursor {
        // The input's cursor is this position's: decoding it above must have succeeded.
        assert!(
            codec
                .decode(&cursor, &account, &resource, filter.as_deref())
                .is_ok()
        );
    }
    assert!(
        other
            .decode(&issued, &account, &resource, filter.as_deref())
            .is_err()
    );
    let elsewhere = format!("{account}x");
    assert!(
        codec
            .decode(&issued, &elsewhere, &resource, filter.as_deref())
            .is_err()
    );
    assert!(
        codec
            .decode(
                &issued,
                &account,
                &format!("{resource}x"),
                filter.as_deref()
            )
            .is_err()
    );
    let other_filter = match &filter {
        Some(f) => Some(format!("{f}x")),
        None => Some(String::new()),
    };
    assert!(
        codec
            .decode(&issued, &account, &resource, other_filter.as_deref())
            .is_err()
    );
    if filter.is_some() {
        assert!(codec.decode(&issued, &account, &resource, None).is_err());
    }

    // One character changed, at a place and to a value the input picks.
    let bytes = issued.as_bytes();
    let digest = Sha256::digest(data);
    let at = usize::from(u16::from_le_bytes([digest[0], digest[1]])) % bytes.len();
    const ALPHABET: &[u8] =
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ";
    let mut replacement = ALPHABET[usize::from(digest[2]) % ALPHABET.len()];
    if replacement == bytes[at] {
        replacement = if bytes[at] == b'A' { b'B' } else { b'A' };
    }
    let mut edited = bytes.to_vec();
    edited[at] = replacement;
    let edited = String::from_utf8(edited).unwrap_or_default();
    assert!(
        codec
            .decode(&edited, &account, &resource, filter.as_deref())
            .is_err(),
        "an edited cursor was accepted: {edited}"
    );
});
