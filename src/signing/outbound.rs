//! Tessera's own signature on deliveries to the customer's endpoints:
//! `tessera-signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`.

/// The `tessera-signature` header value for `body` sent at `unix_secs`.
pub fn signature_header(secret: &[u8], unix_secs: i64, body: &[u8]) -> String {
    let mut message = format!("{unix_secs}.").into_bytes();
    message.extend_from_slice(body);
    format!(
        "t={unix_secs},v1={}",
        super::hex(&super::hmac::sign(secret, &message))
    )
}
