//! Any byte string is an import token or `InvalidImportToken`, never a panic; a parsed token
//! re-encodes to the same bytes, and its header is the binding the backend sealed its state to.
#![no_main]

use keyward_core::model::import::ImportToken;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = ImportToken::parse(data) {
        assert_eq!(token.encode(), data, "parse and encode are inverse");
        let binding = ImportToken::binding(token.key_id, token.expires_at, token.algorithm, token.wrapping_spec);
        assert_eq!(binding, token.header());
        assert_eq!(ImportToken::binding_expiry(&binding), Some(token.expires_at));
        let _ = token.check(token.key_id, token.expires_at);
    }
});
