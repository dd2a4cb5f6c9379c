//! AWS Signature Version 4 verification, shared by every SigV4 front door (the AWS KMS API,
//! and the XKS proxy API under its own service name).
//!
//! The server recomputes the signature over exactly the headers the client listed in
//! `SignedHeaders` (`host` and `x-amz-date` must be among them), the path, the query and the
//! SHA-256 of the body it actually received, with the signing key derived from the secret for
//! the credential scope's date, region and service. Comparison is constant-time.

use aws_lc_rs::{digest, hmac};
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, Utc};

/// Clock skew tolerated between `X-Amz-Date` and the server's clock.
pub const MAX_SKEW: TimeDelta = TimeDelta::minutes(5);

/// Why a request's signature was refused. Each maps to the AWS error name clients expect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigV4Error {
    /// No `Authorization` header (`MissingAuthenticationTokenException`).
    Missing,
    /// The header is not a complete SigV4 authorization (`IncompleteSignatureException`).
    Incomplete(String),
    /// The access key is unknown or deleted, or a session token was sent
    /// (`UnrecognizedClientException`).
    UnknownKey,
    /// The signature does not match (`InvalidSignatureException`).
    Mismatch(String),
    /// `X-Amz-Date` is too far from the server's clock (`InvalidSignatureException`).
    Expired(String),
}

/// The parsed `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization<'a> {
    /// The access key id.
    pub access_key_id: &'a str,
    /// `YYYYMMDD` of the credential scope.
    pub date: &'a str,
    /// The region of the credential scope (any region is accepted).
    pub region: &'a str,
    /// The service of the credential scope.
    pub service: &'a str,
    /// The signed header names, lower case, in the order given.
    pub signed_headers: Vec<&'a str>,
    signed_headers_text: &'a str,
    /// The hex signature.
    pub signature: &'a str,
}

/// Parses `AWS4-HMAC-SHA256 Credential=AK/DATE/REGION/SERVICE/aws4_request,
/// SignedHeaders=a;b, Signature=hex`.
pub fn parse_authorization(header: &str) -> Result<Authorization<'_>, SigV4Error> {
    let incomplete = |what: &str| {
        SigV4Error::Incomplete(format!(
            "Authorization header requires '{what}' parameter. Authorization header must be an AWS4-HMAC-SHA256 \
             authorization."
        ))
    };
    let rest = header.strip_prefix("AWS4-HMAC-SHA256 ").ok_or_else(|| {
        SigV4Error::Incomplete("Authorization header must use the AWS4-HMAC-SHA256 algorithm.".into())
    })?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let credential = credential.ok_or_else(|| incomplete("Credential"))?;
    let signed_headers_text = signed.ok_or_else(|| incomplete("SignedHeaders"))?;
    let signature = signature.ok_or_else(|| incomplete("Signature"))?;
    let mut scope = credential.split('/');
    let (Some(access_key_id), Some(date), Some(region), Some(service), Some("aws4_request"), None) =
        (scope.next(), scope.next(), scope.next(), scope.next(), scope.next(), scope.next())
    else {
        return Err(SigV4Error::Incomplete(format!(
            "Credential should be scoped to a valid region, service and terminator: 'KEY/YYYYMMDD/REGION/SERVICE/aws4_request', not '{}'.",
            credential.chars().take(200).collect::<String>()
        )));
    };
    if access_key_id.is_empty() || region.is_empty() || date.len() != 8 {
        return Err(incomplete("Credential"));
    }
    let signed_headers: Vec<&str> = signed_headers_text.split(';').collect();
    if signed_headers.iter().any(|h| h.is_empty() || h.bytes().any(|b| b.is_ascii_uppercase())) {
        return Err(SigV4Error::Incomplete("SignedHeaders must be lower-case header names separated by ';'.".into()));
    }
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SigV4Error::Mismatch(MISMATCH.into()));
    }
    Ok(Authorization { access_key_id, date, region, service, signed_headers, signed_headers_text, signature })
}

/// What AWS answers for a signature that does not match.
pub const MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check \
                            your AWS Secret Access Key and signing method. Consult the service documentation for \
                            details.";

/// The request as received, for canonicalization.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `POST`, `GET`, ...
    pub method: &'a str,
    /// The path as sent (still percent-encoded).
    pub path: &'a str,
    /// The query string as sent, without `?`.
    pub query: &'a str,
    /// The body as received.
    pub body: &'a [u8],
}

/// Checks the request time against the server clock and the credential scope; returns it.
pub fn check_time(
    auth: &Authorization<'_>,
    amz_date: Option<&str>,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, SigV4Error> {
    let amz_date = amz_date.ok_or_else(|| {
        SigV4Error::Incomplete(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.".into(),
        )
    })?;
    let at = NaiveDateTime::parse_from_str(amz_date, "%Y%m%dT%H%M%SZ")
        .map_err(|_| {
            SigV4Error::Incomplete(format!("X-Amz-Date '{}' is not YYYYMMDD'T'HHMMSS'Z'.", truncate(amz_date)))
        })?
        .and_utc();
    let fmt = |t: DateTime<Utc>| t.format("%Y%m%dT%H%M%SZ").to_string();
    if at < now - MAX_SKEW {
        return Err(SigV4Error::Expired(format!(
            "Signature expired: {} is now earlier than {} ({} - 5 min.)",
            fmt(at),
            fmt(now - MAX_SKEW),
            fmt(now)
        )));
    }
    if at > now + MAX_SKEW {
        return Err(SigV4Error::Expired(format!(
            "Signature not yet current: {} is still later than {} ({} + 5 min.)",
            fmt(at),
            fmt(now + MAX_SKEW),
            fmt(now)
        )));
    }
    if auth.date != &amz_date[..8] {
        return Err(SigV4Error::Mismatch(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}'.",
            truncate(auth.date),
            &amz_date[..8]
        )));
    }
    Ok(at)
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

/// The signing key for a secret and a credential scope (`kSigning`).
pub fn signing_key(secret: &str, date: NaiveDate, region: &str, service: &str) -> [u8; 32] {
    let mac = |key: &[u8], data: &[u8]| hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data);
    let mut prefixed = zeroize::Zeroizing::new(Vec::with_capacity(4 + secret.len()));
    prefixed.extend_from_slice(b"AWS4");
    prefixed.extend_from_slice(secret.as_bytes());
    let k_date = mac(&prefixed, date.format("%Y%m%d").to_string().as_bytes());
    let k_region = mac(k_date.as_ref(), region.as_bytes());
    let k_service = mac(k_region.as_ref(), service.as_bytes());
    let k_signing = mac(k_service.as_ref(), b"aws4_request");
    let mut out = [0u8; 32];
    out.copy_from_slice(k_signing.as_ref());
    out
}

/// Verifies the signature with a signing key. `header` returns every value of a header name
/// (lower case) in the order received.
pub fn verify<'h>(
    auth: &Authorization<'_>,
    request: Request<'_>,
    header: impl Fn(&str) -> Vec<&'h [u8]>,
    amz_date: &str,
    key: &[u8; 32],
) -> Result<(), SigV4Error> {
    for required in ["host", "x-amz-date"] {
        if !auth.signed_headers.contains(&required) {
            return Err(SigV4Error::Mismatch(format!(
                "'{required}' must be a 'SignedHeader' in the AWS Authorization."
            )));
        }
    }
    let canonical = canonical_request(auth, request, header)?;
    let hashed = hex::encode(digest::digest(&digest::SHA256, canonical.as_bytes()));
    let string_to_sign =
        format!("AWS4-HMAC-SHA256\n{amz_date}\n{}/{}/{}/aws4_request\n{hashed}", auth.date, auth.region, auth.service);
    let expected = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), string_to_sign.as_bytes());
    let given = hex::decode(auth.signature).map_err(|_| SigV4Error::Mismatch(MISMATCH.into()))?;
    if aws_lc_rs::constant_time::verify_slices_are_equal(expected.as_ref(), &given).is_ok() {
        Ok(())
    } else {
        Err(SigV4Error::Mismatch(MISMATCH.into()))
    }
}

/// Signs a request as an AWS SDK would (for Keyward's own tools: the benchmark and tests;
/// interoperability is proven with AWS's clients). `headers` are (lower-case name, value)
/// pairs, all signed; they must include `host` and `x-amz-date`. Returns the `Authorization`
/// header.
#[allow(clippy::too_many_arguments, reason = "the parts of a SigV4 signature")]
pub fn authorization(
    access_key_id: &str,
    secret: &str,
    region: &str,
    service: &str,
    request: Request<'_>,
    headers: &[(&str, &str)],
) -> Result<String, SigV4Error> {
    let amz_date = headers
        .iter()
        .find(|(n, _)| *n == "x-amz-date")
        .map(|(_, v)| *v)
        .ok_or_else(|| SigV4Error::Incomplete("x-amz-date is required".into()))?;
    let date = amz_date.get(..8).ok_or_else(|| SigV4Error::Incomplete("x-amz-date is too short".into()))?;
    let mut names: Vec<&str> = headers.iter().map(|(n, _)| *n).collect();
    names.sort_unstable();
    names.dedup();
    let signed = names.join(";");
    let draft = format!(
        "AWS4-HMAC-SHA256 Credential={access_key_id}/{date}/{region}/{service}/aws4_request, SignedHeaders={signed}, \
         Signature={}",
        "0".repeat(64)
    );
    let auth = parse_authorization(&draft)?;
    let header = |name: &str| headers.iter().filter(|(n, _)| *n == name).map(|(_, v)| v.as_bytes()).collect();
    let canonical = canonical_request(&auth, request, header)?;
    let hashed = hex::encode(digest::digest(&digest::SHA256, canonical.as_bytes()));
    let string_to_sign = format!("AWS4-HMAC-SHA256\n{amz_date}\n{date}/{region}/{service}/aws4_request\n{hashed}");
    let day = NaiveDate::parse_from_str(date, "%Y%m%d")
        .map_err(|_| SigV4Error::Incomplete("x-amz-date is not a date".into()))?;
    let key = signing_key(secret, day, region, service);
    let signature = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), string_to_sign.as_bytes());
    Ok(draft.replace(&"0".repeat(64), &hex::encode(signature.as_ref())))
}

/// The canonical request: method, URI, query, the signed headers, their names, and the
/// payload's SHA-256.
fn canonical_request<'h>(
    auth: &Authorization<'_>,
    r: Request<'_>,
    header: impl Fn(&str) -> Vec<&'h [u8]>,
) -> Result<String, SigV4Error> {
    let mut out = String::with_capacity(512 + r.path.len() + r.query.len());
    out.push_str(r.method);
    out.push('\n');
    canonical_uri(r.path, &mut out);
    out.push('\n');
    canonical_query(r.query, &mut out);
    out.push('\n');
    for name in &auth.signed_headers {
        let values = header(name);
        if values.is_empty() {
            return Err(SigV4Error::Mismatch(MISMATCH.into()));
        }
        out.push_str(name);
        out.push(':');
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            // Trim, and fold runs of spaces to one (header values are Latin-1 on the wire).
            let text: String = v.iter().map(|&b| char::from(b)).collect();
            let mut first = true;
            for word in text.split_whitespace() {
                if !first {
                    out.push(' ');
                }
                out.push_str(word);
                first = false;
            }
        }
        out.push('\n');
    }
    out.push('\n');
    out.push_str(auth.signed_headers_text);
    out.push('\n');
    out.push_str(&hex::encode(digest::digest(&digest::SHA256, r.body)));
    Ok(out)
}

const UNRESERVED: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// The path normalized (`.` and `..` segments resolved, repeated slashes kept) and each segment
/// encoded again, as every service but S3 signs it.
fn canonical_uri(path: &str, out: &mut String) {
    let path = if path.is_empty() { "/" } else { path };
    let mut segments: Vec<&str> = Vec::new();
    for seg in path.split('/').skip(1) {
        match seg {
            "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    if segments.is_empty() {
        out.push('/');
        return;
    }
    for seg in segments {
        out.push('/');
        out.extend(percent_encoding::utf8_percent_encode(seg, UNRESERVED));
    }
}

/// Parameters decoded, re-encoded with the unreserved set, sorted by name then value.
fn canonical_query(query: &str, out: &mut String) {
    if query.is_empty() {
        return;
    }
    let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let enc = |s: &str| percent_encoding::utf8_percent_encode(&decode(s), UNRESERVED).to_string();
            (enc(k), enc(v))
        })
        .collect();
    pairs.sort();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, reason = "tests fail loudly")]
mod tests {
    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    /// Method, path, query, headers, body, expected Authorization header.
    type Case =
        (&'static str, &'static str, &'static str, Vec<(&'static str, &'static str)>, &'static str, &'static str);

    /// Cases of AWS's published SigV4 test suite (credentials AKIDEXAMPLE, service `service`,
    /// 2015-08-30T12:36:00Z): request line, headers, body, expected Authorization header.
    fn suite() -> Vec<Case> {
        let base = vec![("host", "example.amazonaws.com"), ("x-amz-date", "20150830T123600Z")];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut h = base.clone();
            h.extend_from_slice(extra);
            h
        };
        vec![
            (
                "GET",
                "/",
                "",
                base.clone(),
                "",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            ),
            (
                "POST",
                "/",
                "",
                base.clone(),
                "",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
            ),
            (
                "GET",
                "/",
                "Param2=value2&Param1=value1",
                base.clone(),
                "",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
            ),
            (
                "GET",
                "/",
                "",
                with(&[("my-header1", " value1"), ("my-header2", " \"a   b   c\"")]),
                "",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;my-header1;my-header2;x-amz-date, Signature=acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
            ),
            (
                "GET",
                "/ሴ",
                "",
                base.clone(),
                "",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85",
            ),
        ]
    }

    fn check(
        method: &str,
        path: &str,
        query: &str,
        headers: &[(&str, &str)],
        body: &str,
        authz: &str,
    ) -> Result<(), SigV4Error> {
        let auth = parse_authorization(authz)?;
        let at = DateTime::parse_from_rfc3339("2015-08-30T12:36:00Z").unwrap().with_timezone(&Utc);
        let amz = headers.iter().find(|(n, _)| *n == "x-amz-date").map(|(_, v)| *v);
        check_time(&auth, amz, at)?;
        let date = NaiveDate::parse_from_str(auth.date, "%Y%m%d").unwrap();
        let key = signing_key(SECRET, date, auth.region, auth.service);
        let header = |name: &str| headers.iter().filter(|(n, _)| *n == name).map(|(_, v)| v.as_bytes()).collect();
        verify(&auth, Request { method, path, query, body: body.as_bytes() }, header, amz.unwrap(), &key)
    }

    #[test]
    fn aws_suite_cases_verify() {
        for (method, path, query, headers, body, authz) in suite() {
            assert_eq!(check(method, path, query, &headers, body, authz), Ok(()), "{method} {path}?{query}");
        }
    }

    #[test]
    fn any_change_to_a_signed_part_is_a_mismatch() {
        for (method, path, query, headers, body, authz) in suite() {
            let mut tampered = headers.clone();
            tampered[0].1 = "example.amazonaws.org";
            assert!(matches!(check(method, path, query, &tampered, body, authz), Err(SigV4Error::Mismatch(_))));
            assert!(matches!(check(method, path, query, &headers, "x", authz), Err(SigV4Error::Mismatch(_))));
            assert!(matches!(check(method, path, "a=b", &headers, body, authz), Err(SigV4Error::Mismatch(_))));
            let flipped = authz
                .replace("Signature=5", "Signature=6")
                .replace("Signature=b", "Signature=c")
                .replace("Signature=a", "Signature=b")
                .replace("Signature=8", "Signature=9");
            assert!(matches!(check(method, path, query, &headers, body, &flipped), Err(SigV4Error::Mismatch(_))));
        }
    }

    #[test]
    fn malformed_headers_are_incomplete() {
        for bad in [
            "AWS4-HMAC-SHA256 SignedHeaders=host;x-amz-date, Signature=00",
            "AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1/service/aws4_request, Signature=00",
            "AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1/service/aws4_request, SignedHeaders=host",
            "AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1/aws4_request, SignedHeaders=host, Signature=00",
            "Bearer abc",
        ] {
            assert!(matches!(parse_authorization(bad), Err(SigV4Error::Incomplete(_))), "{bad}");
        }
    }

    #[test]
    fn skew_beyond_five_minutes_is_expired_with_aws_wording() {
        let auth = parse_authorization(suite()[0].5).unwrap();
        let at = DateTime::parse_from_rfc3339("2015-08-30T12:42:00Z").unwrap().with_timezone(&Utc);
        match check_time(&auth, Some("20150830T123600Z"), at) {
            Err(SigV4Error::Expired(m)) => {
                assert!(m.starts_with("Signature expired: 20150830T123600Z is now earlier than"), "{m}")
            }
            other => panic!("{other:?}"),
        }
        let at = DateTime::parse_from_rfc3339("2015-08-30T12:30:00Z").unwrap().with_timezone(&Utc);
        assert!(matches!(check_time(&auth, Some("20150830T123600Z"), at), Err(SigV4Error::Expired(_))));
        let at = DateTime::parse_from_rfc3339("2015-08-30T12:40:59Z").unwrap().with_timezone(&Utc);
        assert!(check_time(&auth, Some("20150830T123600Z"), at).is_ok());
    }

    #[test]
    fn the_signer_matches_the_suite() {
        let headers = [("host", "example.amazonaws.com"), ("x-amz-date", "20150830T123600Z")];
        let r = Request { method: "GET", path: "/", query: "Param2=value2&Param1=value1", body: b"" };
        let a = authorization("AKIDEXAMPLE", SECRET, "us-east-1", "service", r, &headers).unwrap();
        assert_eq!(a, suite()[2].5);
    }

    #[test]
    fn host_and_date_must_be_signed() {
        let authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
        let headers = [("host", "example.amazonaws.com"), ("x-amz-date", "20150830T123600Z")];
        assert!(
            matches!(check("GET", "/", "", &headers, "", authz), Err(SigV4Error::Mismatch(m)) if m.contains("'host'"))
        );
    }
}
