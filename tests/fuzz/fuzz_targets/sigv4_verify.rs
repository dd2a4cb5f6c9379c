//! Any Authorization header and request either verifies or is refused with a reason, never a
//! panic; a request signed by the signer verifies, and any change to its body does not.
#![no_main]

use keyward_sigv4::{Request, authorization, check_time, parse_authorization, verify};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(5, '\n');
    let (auth, method, path, query, body) =
        (parts.next().unwrap_or(""), parts.next().unwrap_or("POST"), parts.next().unwrap_or("/"), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let headers = [("host", "kms.example"), ("x-amz-date", "20260101T000000Z")];
    let lookup = |name: &str| headers.iter().filter(|(n, _)| *n == name).map(|(_, v)| v.as_bytes()).collect();
    if let Ok(parsed) = parse_authorization(auth) {
        let now = chrono::DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default();
        let _ = check_time(&parsed, Some("20260101T000000Z"), now);
        let r = Request { method, path, query, body: body.as_bytes() };
        let _ = verify(&parsed, r, lookup, "20260101T000000Z", &[0u8; 32]);
    }
    // Round trip: what the signer writes for this request verifies; another body does not.
    let r = Request { method, path, query, body: body.as_bytes() };
    if let Ok(signed) = authorization("KWAAAAAAAAAAAAAAAAAA", "secret", "us-east-1", "kms", r, &headers) {
        let parsed = parse_authorization(&signed).unwrap_or_else(|e| panic!("signer output unparsable: {e:?}"));
        let day = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default();
        let key = keyward_sigv4::signing_key("secret", day, "us-east-1", "kms");
        assert!(verify(&parsed, r, lookup, "20260101T000000Z", &key).is_ok(), "signed request refused");
        let mut other = body.as_bytes().to_vec();
        other.push(b'!');
        let changed = Request { body: &other, ..r };
        assert!(verify(&parsed, changed, lookup, "20260101T000000Z", &key).is_err(), "altered body accepted");
    }
});
