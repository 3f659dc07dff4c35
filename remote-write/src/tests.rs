use super::*;

const NOW: i64 = 1_800_000_000_000;

fn series(name: &str, extra: &[(&str, &str)], samples: &[(f64, i64)]) -> TimeSeries {
    let mut labels = vec![Label {
        name: "__name__".into(),
        value: name.into(),
    }];
    labels.extend(extra.iter().map(|(n, v)| Label {
        name: (*n).into(),
        value: (*v).into(),
    }));
    TimeSeries {
        labels,
        samples: samples
            .iter()
            .map(|(value, timestamp)| Sample {
                value: *value,
                timestamp: *timestamp,
            })
            .collect(),
    }
}

fn request(ts: Vec<TimeSeries>) -> WriteRequest {
    WriteRequest { timeseries: ts }
}

#[test]
fn the_wire_format_is_prometheus_remote_write() {
    // One series {__name__="up"} with the sample (1.0, 1000 ms), encoded by hand from
    // prompb's field numbers.
    let mut expected = vec![0x0a, 0x1e, 0x0a, 0x0e, 0x0a, 0x08];
    expected.extend_from_slice(b"__name__");
    expected.extend_from_slice(&[0x12, 0x02]);
    expected.extend_from_slice(b"up");
    expected.extend_from_slice(&[0x12, 0x0c, 0x09]);
    expected.extend_from_slice(&1.0f64.to_le_bytes());
    expected.extend_from_slice(&[0x10, 0xe8, 0x07]);
    let req = request(vec![series("up", &[], &[(1.0, 1000)])]);
    assert_eq!(prost::Message::encode_to_vec(&req), expected);
    let body = req.encode_body();
    assert_eq!(
        WriteRequest::decode_body(&body, &Limits::default(), NOW),
        Ok(req)
    );
}

#[test]
fn stamping_overwrites_a_forged_identity_and_keeps_labels_sorted() {
    let mut req = request(vec![
        series(
            "node_load1",
            &[("node_name", "someone-else"), ("job", "node")],
            &[(0.5, NOW)],
        ),
        series("up", &[("node_id", "n-999")], &[(1.0, NOW)]),
    ]);
    req.stamp("n-1", "web-1");
    for ts in &req.timeseries {
        let names: Vec<&str> = ts.labels.iter().map(|l| l.name.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        let get = |n: &str| {
            ts.labels
                .iter()
                .filter(|l| l.name == n)
                .map(|l| l.value.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(get("node_id"), vec!["n-1"]);
        assert_eq!(get("node_name"), vec!["web-1"]);
    }
    assert_eq!(req.samples(), 2);
}

#[test]
fn each_limit_refuses_the_whole_request() {
    let limits = Limits {
        max_series: 2,
        max_labels_per_series: 3,
        max_label_name_bytes: 10,
        max_label_value_bytes: 5,
        ..Limits::default()
    };
    let ok = series("up", &[], &[(1.0, NOW)]);
    type Expect = fn(&Rejection) -> bool;
    let cases: Vec<(WriteRequest, Expect)> = vec![
        (request(vec![ok.clone(), ok.clone(), ok.clone()]), |r| {
            matches!(r, Rejection::TooManySeries { count: 3, .. })
        }),
        (
            request(vec![series(
                "up",
                &[("a", "1"), ("b", "2"), ("c", "3")],
                &[(1.0, NOW)],
            )]),
            |r| matches!(r, Rejection::TooManyLabels { .. }),
        ),
        (
            request(vec![series("up", &[("1bad", "x")], &[(1.0, NOW)])]),
            |r| matches!(r, Rejection::BadLabelName { .. }),
        ),
        (
            request(vec![series("up", &[("much_too_long", "x")], &[(1.0, NOW)])]),
            |r| matches!(r, Rejection::BadLabelName { .. }),
        ),
        (
            request(vec![series("up", &[("a", "123456")], &[(1.0, NOW)])]),
            |r| matches!(r, Rejection::LabelValueTooLong { .. }),
        ),
        (
            request(vec![series("up", &[("a", "1"), ("a", "2")], &[(1.0, NOW)])]),
            |r| matches!(r, Rejection::DuplicateLabel { .. }),
        ),
        (request(vec![series("9up", &[], &[(1.0, NOW)])]), |r| {
            matches!(r, Rejection::BadMetricName { .. })
        }),
        (
            request(vec![TimeSeries {
                labels: vec![Label {
                    name: "a".into(),
                    value: "b".into(),
                }],
                samples: vec![Sample {
                    value: 1.0,
                    timestamp: NOW,
                }],
            }]),
            |r| matches!(r, Rejection::NoName { .. }),
        ),
        (request(vec![series("up", &[], &[])]), |r| {
            matches!(r, Rejection::NoSamples { .. })
        }),
        (
            request(vec![
                ok.clone(),
                series("up", &[], &[(1.0, NOW + 11 * 60 * 1000)]),
            ]),
            |r| matches!(r, Rejection::FromTheFuture { index: 1, .. }),
        ),
    ];
    for (i, (req, want)) in cases.iter().enumerate() {
        let err = limits.check(req, NOW).unwrap_err();
        assert!(want(&err), "case {i}: {err}");
        let body = req.encode_body();
        assert!(
            matches!(
                WriteRequest::decode_body(&body, &limits, NOW),
                Err(DecodeError::Invalid(_))
            ),
            "case {i}"
        );
    }
    assert_eq!(limits.check(&request(vec![ok.clone(), ok]), NOW), Ok(()));
}

#[test]
fn sizes_are_checked_before_decompressing() {
    let big = request(vec![series(
        "up",
        &[("pad", &"x".repeat(4000))],
        &[(1.0, NOW)],
    )]);
    let body = big.encode_body();
    let small_compressed = Limits {
        max_compressed_bytes: body.len() - 1,
        ..Limits::default()
    };
    assert!(matches!(
        WriteRequest::decode_body(&body, &small_compressed, NOW),
        Err(DecodeError::CompressedTooLarge { .. })
    ));
    let small_decompressed = Limits {
        max_decompressed_bytes: 1000,
        ..Limits::default()
    };
    assert!(matches!(
        WriteRequest::decode_body(&body, &small_decompressed, NOW),
        Err(DecodeError::DecompressedTooLarge { .. })
    ));
    // A snappy header that claims 4 GiB is refused from the header alone.
    let liar = [0x80, 0x80, 0x80, 0x80, 0x10];
    assert!(matches!(
        WriteRequest::decode_body(&liar, &Limits::default(), NOW),
        Err(DecodeError::DecompressedTooLarge { .. }) | Err(DecodeError::Snappy(_))
    ));
}

#[test]
fn garbage_is_refused_with_a_reason() {
    assert!(matches!(
        WriteRequest::decode_body(b"not snappy at all", &Limits::default(), NOW),
        Err(DecodeError::Snappy(_))
    ));
    let not_proto = snap::raw::Encoder::new().compress_vec(&[0xff; 32]).unwrap();
    assert!(matches!(
        WriteRequest::decode_body(&not_proto, &Limits::default(), NOW),
        Err(DecodeError::Protobuf(_))
    ));
    assert!(WriteRequest::decode_body(b"", &Limits::default(), NOW).is_err());
}

#[test]
fn one_series_is_checked_as_in_a_request() {
    let limits = Limits::default();
    let ok = TimeSeries {
        labels: vec![Label {
            name: "__name__".into(),
            value: "up".into(),
        }],
        samples: vec![Sample {
            value: 1.0,
            timestamp: 1_000,
        }],
    };
    assert_eq!(limits.check_one(&ok, 1_000), Ok(()));
    let mut bad = ok.clone();
    bad.labels.push(Label {
        name: "x".into(),
        value: "v".repeat(limits.max_label_value_bytes + 1),
    });
    let request = WriteRequest {
        timeseries: vec![bad.clone()],
    };
    assert_eq!(
        limits.check_one(&bad, 1_000).err(),
        limits.check(&request, 1_000).err()
    );
    assert!(crate::is_label_name("node_name") && !crate::is_label_name("1x"));
}
