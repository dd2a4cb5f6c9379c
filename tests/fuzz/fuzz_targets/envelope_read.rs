//! Any input to `keyward decrypt` is refused cleanly: the header reader and the frame reader
//! never panic and never release unauthenticated bytes.
#![no_main]

use keyward_client::envelope;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = data;
    if let Ok(header) = envelope::read_header(&mut input) {
        let mut out = Vec::new();
        let opened = envelope::open(&header, &[7u8; 32], input, &mut out);
        // The key is not the one any valid header commits to: nothing may come out.
        assert!(opened.is_err() && out.is_empty(), "forged envelope opened");
    }
});
