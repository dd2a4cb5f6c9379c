//! Any byte string is a blob or a clear error, never a panic; a parsed blob re-encodes to the
//! same bytes.
#![no_main]

use keyward_core::blob::Blob;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(blob) = Blob::parse(data) {
        assert_eq!(blob.encode(), data, "parse and encode are inverse");
        let _ = blob.header.associated_data(&Default::default());
    }
});
