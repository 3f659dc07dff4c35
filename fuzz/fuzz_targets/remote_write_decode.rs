//! Any bytes through the remote-write decoder: no panic, no unbounded allocation, and
//! whatever is accepted survives stamping and an encode/decode round trip unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use perch_remote_write::{Limits, WriteRequest};

const NOW: i64 = 1_800_000_000_000;

fuzz_target!(|body: &[u8]| {
    let limits = Limits {
        max_decompressed_bytes: 1 << 20,
        ..Limits::default()
    };
    if let Ok(mut request) = WriteRequest::decode_body(body, &limits, NOW) {
        request.stamp("n-1", "fuzz");
        let again = WriteRequest::decode_body(&request.encode_body(), &Limits::default(), NOW)
            .expect("a stamped, accepted request decodes again");
        assert_eq!(again, request);
    }
});
