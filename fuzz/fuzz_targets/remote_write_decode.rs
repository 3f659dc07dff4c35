//! Any bytes through the remote-write decoder: no panic, no unbounded allocation, whatever
//! is accepted survives stamping and an encode/decode round trip unchanged, and the
//! one-pass fast path (`rewrite`) agrees with decode + stamp + encode: the same error, or
//! the same counts and the same protobuf to forward.
#![no_main]

use libfuzzer_sys::fuzz_target;
use perch_remote_write::{DecodeError, Limits, NodeStamp, WriteRequest, rewrite};

const NOW: i64 = 1_800_000_000_000;

/// `decoded` is `WriteRequest::decode_body(body, limits, NOW)`.
fn check_fast_path(
    body: &[u8],
    limits: &Limits,
    decoded: &Result<WriteRequest, DecodeError>,
    stamp: Option<NodeStamp<'_>>,
) {
    let slow = decoded.as_ref().map(|request| {
        let mut request = request.clone();
        if let Some(s) = stamp {
            request.stamp(s.node_id, s.node_name);
        }
        request
    });
    let fast = rewrite(body, limits, NOW, stamp);
    match (slow, fast) {
        (Err(want), Err(got)) => assert_eq!(&got, want),
        (Ok(request), Ok(got)) => {
            assert_eq!(got.series, request.timeseries.len());
            assert_eq!(got.samples, request.samples());
            let want = request.encode_body();
            if got.body != want {
                // Allowed only unstamped, forwarding the sender's own bytes when they hold
                // exactly the protobuf re-encoding gives (compared as re-encoded bytes, so
                // that NaN values compare too).
                assert!(stamp.is_none() && got.body == body);
                let forwarded = WriteRequest::decode_body(&got.body, limits, NOW)
                    .expect("the forwarded body decodes");
                assert_eq!(forwarded.encode_body(), want);
            }
        }
        (slow, fast) => panic!("the paths disagree: slow {slow:?}, fast {fast:?}"),
    }
}

fuzz_target!(|body: &[u8]| {
    let limits = Limits {
        max_decompressed_bytes: 1 << 20,
        ..Limits::default()
    };
    let decoded = WriteRequest::decode_body(body, &limits, NOW);
    if let Ok(request) = &decoded {
        let mut request = request.clone();
        request.stamp("n-1", "fuzz");
        // Stamping may add two labels to a series that had the most allowed.
        let stamped_limits = Limits {
            max_labels_per_series: Limits::default().max_labels_per_series + 2,
            ..Limits::default()
        };
        let encoded = request.encode_body();
        let again = WriteRequest::decode_body(&encoded, &stamped_limits, NOW)
            .expect("a stamped, accepted request decodes again");
        // Compared as bytes, so that NaN sample values compare equal to themselves.
        assert_eq!(again.encode_body(), encoded);
    }
    let stamp = NodeStamp {
        node_id: "n-1",
        node_name: "fuzz",
    };
    check_fast_path(body, &limits, &decoded, Some(stamp));
    check_fast_path(body, &limits, &decoded, None);
});
