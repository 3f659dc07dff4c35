//! The fast path ([`rewrite`]) against the owned-value path (`decode_body`, `stamp`,
//! `encode_body`): same errors, same bytes, over generated and mutated requests.

use prost::Message;

use super::*;
use crate::transcode::{Fault, transcode};

const NOW: i64 = 1_800_000_000_000;
const STAMP: NodeStamp<'static> = NodeStamp {
    node_id: "n-1",
    node_name: "web-1",
};

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// True with probability `percent`/100.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A varint padded with redundant continuation bytes (still at most 10 bytes), which
/// decoders must accept.
fn varint_padded(out: &mut Vec<u8>, v: u64) {
    let mut bytes = Vec::new();
    varint(&mut bytes, v);
    if bytes.len() < 10 {
        let last = bytes.len() - 1;
        bytes[last] |= 0x80;
        bytes.push(0);
    }
    out.extend_from_slice(&bytes);
}

fn key(out: &mut Vec<u8>, tag: u32, wire_type: u8) {
    varint(out, u64::from(tag << 3 | u32::from(wire_type)));
}

fn len_field(out: &mut Vec<u8>, tag: u32, payload: &[u8]) {
    key(out, tag, 2);
    varint(out, payload.len() as u64);
    out.extend_from_slice(payload);
}

/// Some field a Perch message does not know, of a random wire type (groups included).
fn unknown_field(rng: &mut Rng, out: &mut Vec<u8>) {
    let tag = *rng.pick(&[3u32, 4, 5, 9, 15, 16, 1000, (1 << 29) - 1]);
    match rng.below(5) {
        0 => {
            key(out, tag, 0);
            varint(out, rng.next());
        }
        1 => {
            key(out, tag, 1);
            out.extend_from_slice(&rng.next().to_le_bytes());
        }
        2 => {
            key(out, tag, 5);
            out.extend_from_slice(&[1, 2, 3, 4]);
        }
        3 => {
            // An exemplar-like nested message.
            let mut inner = Vec::new();
            len_field(&mut inner, 1, b"trace_id");
            key(&mut inner, 2, 1);
            inner.extend_from_slice(&2.5f64.to_le_bytes());
            len_field(out, tag, &inner);
        }
        _ => {
            key(out, tag, 3);
            key(out, 1, 0);
            varint(out, 7);
            key(out, 2, 3);
            key(out, 2, 4);
            key(out, tag, 4);
        }
    }
}

const NAMES: &[&str] = &[
    "job",
    "instance",
    "a",
    "zeta",
    "mode",
    "cpu",
    "node_id",
    "node_name",
    "node_id",
    "device",
    "",
    "1bad",
    "has-dash",
    "__name__",
    "a_very_long_label_name",
    "_x",
    "Upper",
];
const VALUES: &[&str] = &[
    "",
    "x",
    "web-1:9100",
    "node",
    "ünïcode ✓",
    "forged",
    "n-999",
    "/",
    "0123456789012345678901",
];
const METRICS: &[&str] = &[
    "up",
    "node_load1",
    "a:b_c",
    "_x",
    "9up",
    "",
    "bad-name",
    "ünï",
];
const TIMESTAMPS: &[i64] = &[
    0,
    NOW,
    NOW - 15_000,
    -1,
    -1_000,
    i64::MIN,
    NOW + 10 * 60 * 1000,
    NOW + 10 * 60 * 1000 + 1,
    i64::MAX,
];

fn value_bits(rng: &mut Rng) -> u64 {
    match rng.below(9) {
        0 => 0,
        1 => (-0.0f64).to_bits(),
        2 => f64::NAN.to_bits(),
        3 => 0x7ff8_0000_dead_beef, // NaN with a payload
        4 => f64::INFINITY.to_bits(),
        5 => f64::NEG_INFINITY.to_bits(),
        6 => f64::MIN_POSITIVE.to_bits(),
        7 => 1.5f64.to_bits(),
        _ => rng.next(),
    }
}

/// A `Label` message: usually canonical, sometimes with explicit empty fields, repeated
/// fields (the last wins), fields in reverse order, or unknown fields.
fn label(rng: &mut Rng, name: &str, value: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut fields: Vec<Vec<u8>> = Vec::new();
    if !name.is_empty() || rng.chance(30) {
        let mut f = Vec::new();
        if rng.chance(5) {
            len_field(&mut f, 1, b"overwritten");
        }
        len_field(&mut f, 1, name.as_bytes());
        fields.push(f);
    }
    if !value.is_empty() || rng.chance(30) {
        let mut f = Vec::new();
        if rng.chance(5) {
            len_field(&mut f, 2, b"overwritten");
        }
        len_field(&mut f, 2, value.as_bytes());
        fields.push(f);
    }
    if rng.chance(10) {
        fields.reverse();
    }
    if rng.chance(5) {
        let mut f = Vec::new();
        unknown_field(rng, &mut f);
        fields.insert(rng.below(fields.len() + 1), f);
    }
    for f in fields {
        out.extend_from_slice(&f);
    }
    out
}

/// A `Sample` message with the same kinds of variation as [`label`].
fn sample(rng: &mut Rng) -> Vec<u8> {
    let bits = value_bits(rng);
    let ts = *rng.pick(TIMESTAMPS);
    let mut fields: Vec<Vec<u8>> = Vec::new();
    if bits != 0 || rng.chance(20) {
        let mut f = vec![0x09];
        f.extend_from_slice(&bits.to_le_bytes());
        fields.push(f);
    }
    if ts != 0 || rng.chance(20) {
        let mut f = Vec::new();
        if rng.chance(5) {
            f.push(0x10);
            varint(&mut f, 12345);
        }
        f.push(0x10);
        if rng.chance(10) {
            varint_padded(&mut f, ts as u64);
        } else {
            varint(&mut f, ts as u64);
        }
        fields.push(f);
    }
    if rng.chance(15) {
        fields.reverse();
    }
    if rng.chance(5) {
        let mut f = Vec::new();
        unknown_field(rng, &mut f);
        fields.push(f);
    }
    fields.concat()
}

/// A `TimeSeries` message: a metric name (mostly valid), a few labels in random order
/// (forged identities, duplicates, bad names, empty values among them), 0 to 3 samples,
/// label and sample fields interleaved now and then.
fn series(rng: &mut Rng) -> Vec<u8> {
    let mut labels: Vec<(String, String)> = Vec::new();
    if !rng.chance(3) {
        let metric = if rng.chance(90) {
            "up"
        } else {
            *rng.pick(METRICS)
        };
        labels.push(("__name__".into(), metric.into()));
    }
    for _ in 0..rng.below(6) {
        let name = if rng.chance(85) {
            [
                "job",
                "instance",
                "mode",
                "cpu",
                "device",
                "node_name",
                "node_id",
            ][rng.below(7)]
        } else {
            *rng.pick(NAMES)
        };
        if labels.iter().any(|(n, _)| n == name) && rng.chance(80) {
            continue;
        }
        labels.push((name.into(), (*rng.pick(VALUES)).into()));
    }
    if rng.chance(50) {
        labels.sort();
    } else {
        // Unsorted: rotate so __name__ is not always first.
        let k = rng.below(labels.len().max(1));
        labels.rotate_left(k);
    }
    let mut fields: Vec<Vec<u8>> = labels
        .iter()
        .map(|(n, v)| {
            let mut f = Vec::new();
            len_field(&mut f, 1, &label(rng, n, v));
            f
        })
        .collect();
    let samples = *rng.pick(&[1usize, 1, 1, 1, 2, 3, 0]);
    for _ in 0..samples {
        let mut f = Vec::new();
        len_field(&mut f, 2, &sample(rng));
        if rng.chance(10) {
            let at = rng.below(fields.len() + 1);
            fields.insert(at, f);
        } else {
            fields.push(f);
        }
    }
    if rng.chance(8) {
        let mut f = Vec::new();
        unknown_field(rng, &mut f);
        let at = rng.below(fields.len() + 1);
        fields.insert(at, f);
    }
    fields.concat()
}

/// A whole `WriteRequest`, uncompressed.
fn request_bytes(rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    let n = if rng.chance(10) {
        rng.below(40)
    } else {
        rng.below(6)
    };
    for _ in 0..n {
        if rng.chance(4) {
            unknown_field(rng, &mut out);
        }
        len_field(&mut out, 1, &series(rng));
    }
    if rng.chance(5) {
        unknown_field(rng, &mut out);
    }
    out
}

fn compress(raw: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new().compress_vec(raw).unwrap()
}

/// Snappy block format as another encoder might write it: one literal, no copies.
fn compress_literally(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    varint(&mut out, raw.len() as u64);
    if let Some(last) = raw.len().checked_sub(1) {
        out.push(63 << 2);
        out.extend_from_slice(&(last as u32).to_le_bytes());
        out.extend_from_slice(raw);
    }
    out
}

fn decompress(body: &[u8]) -> Vec<u8> {
    snap::raw::Decoder::new().decompress_vec(body).unwrap()
}

/// A request's content in a form that compares NaN by its bits.
type Content = Vec<(Vec<(String, String)>, Vec<(u64, i64)>)>;

fn content(raw: &[u8]) -> Content {
    WriteRequest::decode(raw)
        .unwrap()
        .timeseries
        .into_iter()
        .map(|ts| {
            (
                ts.labels.into_iter().map(|l| (l.name, l.value)).collect(),
                ts.samples
                    .into_iter()
                    .map(|s| (s.value.to_bits(), s.timestamp))
                    .collect(),
            )
        })
        .collect()
}

#[derive(Debug, Default)]
struct Seen {
    accepted: usize,
    /// Series whose labels were recalled, in accepted requests.
    recalled: usize,
    forwarded_as_sent: usize,
    rejected: usize,
    malformed: usize,
}

/// Runs both paths on `body` and asserts they agree; returns which way it went.
fn agree(
    rewriter: &mut Rewriter,
    body: &[u8],
    limits: &Limits,
    stamp: Option<NodeStamp<'_>>,
    seen: &mut Seen,
) {
    let slow = WriteRequest::decode_body(body, limits, NOW).map(|mut req| {
        if let Some(s) = stamp {
            req.stamp(s.node_id, s.node_name);
        }
        (req.encode_body(), req.timeseries.len(), req.samples())
    });
    let fast = rewriter.rewrite(body, limits, NOW, stamp);
    let pooled = rewrite(body, limits, NOW, stamp);
    // The same answer, whatever each remembered of earlier requests.
    let answer = |r: &Result<Rewritten, DecodeError>| {
        r.as_ref()
            .map(|r| (r.body.clone(), r.series, r.samples))
            .map_err(ToString::to_string)
    };
    assert_eq!(
        answer(&fast),
        answer(&pooled),
        "the per-thread rewriter differs"
    );
    match (slow, fast) {
        (Err(want), Err(got)) => {
            assert_eq!(got, want);
            match got {
                DecodeError::Protobuf(_) => seen.malformed += 1,
                _ => seen.rejected += 1,
            }
        }
        (Ok((want, series, samples)), Ok(got)) => {
            assert_eq!((got.series, got.samples), (series, samples));
            seen.recalled += got.recalled;
            if got.body == want {
                seen.accepted += 1;
            } else {
                // Only allowed: forwarding the sender's bytes when they hold exactly the
                // protobuf re-encoding would produce.
                assert!(got.body == body, "bodies differ");
                assert_eq!(decompress(&got.body), decompress(&want));
                seen.forwarded_as_sent += 1;
            }
            assert_eq!(content(&decompress(&got.body)), content(&decompress(&want)));
        }
        (slow, fast) => panic!("paths disagree: slow {slow:?}, fast {fast:?}"),
    }
}

/// The transcoder's own verdict on malformed protobuf must be prost's (the fast path falls
/// back to prost for the error text, which would hide a disagreement).
fn same_protobuf_verdict(raw: &[u8], limits: &Limits) {
    let prost_ok = WriteRequest::decode(raw).is_ok();
    let fast = transcode(
        raw,
        limits,
        NOW,
        Some(STAMP),
        &mut Vec::new(),
        &mut Vec::new(),
        &mut Vec::new(),
        None,
        &mut Vec::new(),
        Some(&mut Vec::new()),
    );
    let fast_ok = !matches!(fast, Err(Fault::Malformed));
    assert_eq!(fast_ok, prost_ok, "protobuf verdicts differ on {raw:02x?}");
}

fn tight_limits() -> Limits {
    Limits {
        max_series: 30,
        max_labels_per_series: 6,
        max_label_name_bytes: 12,
        max_label_value_bytes: 20,
        ..Limits::default()
    }
}

#[test]
fn generated_requests_come_out_the_same_both_ways() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut rewriter = Rewriter::new();
    let mut seen = Seen::default();
    let all_limits = [Limits::default(), tight_limits()];
    for i in 0..6000 {
        let raw = request_bytes(&mut rng);
        same_protobuf_verdict(&raw, &all_limits[i % 2]);
        let body = if i % 3 == 0 {
            compress_literally(&raw)
        } else {
            compress(&raw)
        };
        for limits in &all_limits {
            agree(&mut rewriter, &body, limits, Some(STAMP), &mut seen);
            agree(&mut rewriter, &body, limits, None, &mut seen);
        }
    }
    // The generator must exercise every outcome, or this test proves little.
    assert!(seen.accepted > 2000, "{seen:?}");
    assert!(seen.rejected > 2000, "{seen:?}");
    assert!(seen.forwarded_as_sent > 40, "{seen:?}");
}

#[test]
fn mutated_requests_are_refused_or_accepted_alike() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut rewriter = Rewriter::new();
    let mut seen = Seen::default();
    let limits = Limits::default();
    for _ in 0..15000 {
        let mut raw = request_bytes(&mut rng);
        let n = 1 + rng.below(3);
        mutate(&mut rng, &mut raw, n);
        same_protobuf_verdict(&raw, &limits);
        let body = compress(&raw);
        agree(&mut rewriter, &body, &limits, Some(STAMP), &mut seen);
        agree(&mut rewriter, &body, &limits, None, &mut seen);
    }
    assert!(seen.malformed > 5000, "{seen:?}");
    assert!(seen.accepted > 2000, "{seen:?}");
}

#[test]
fn an_agent_push_is_stamped_sorted_and_stripped_of_unknown_fields() {
    // Labels unsorted, a forged node_name, a negative timestamp, NaN, an exemplar.
    let mut ts = Vec::new();
    for (n, v) in [("job", "node"), ("__name__", "up"), ("node_name", "forged")] {
        let mut l = Vec::new();
        len_field(&mut l, 1, n.as_bytes());
        len_field(&mut l, 2, v.as_bytes());
        len_field(&mut ts, 1, &l);
    }
    let mut s = vec![0x09];
    s.extend_from_slice(&f64::NAN.to_bits().to_le_bytes());
    s.push(0x10);
    varint(&mut s, -5i64 as u64);
    len_field(&mut ts, 2, &s);
    len_field(&mut ts, 3, b"\x0a\x00");
    let mut raw = Vec::new();
    len_field(&mut raw, 1, &ts);
    let out = rewrite(&compress(&raw), &Limits::default(), NOW, Some(STAMP)).unwrap();
    assert_eq!((out.series, out.samples), (1, 1));
    let got = content(&decompress(&out.body));
    let labels: Vec<(&str, &str)> = got[0]
        .0
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        labels,
        [
            ("__name__", "up"),
            ("job", "node"),
            ("node_id", "n-1"),
            ("node_name", "web-1")
        ]
    );
    assert_eq!(got[0].1, [(f64::NAN.to_bits(), -5)]);
    // The negative timestamp took a 10-byte varint; the exemplar is gone.
    let decoded = decompress(&out.body);
    assert!(!decoded.windows(2).any(|w| w == [0x1a, 0x02]));
}

#[test]
fn a_canonical_unstamped_body_is_forwarded_as_sent() {
    let req = WriteRequest {
        timeseries: vec![TimeSeries {
            labels: vec![Label {
                name: "__name__".into(),
                value: "up".into(),
            }],
            samples: vec![Sample {
                value: 1.0,
                timestamp: NOW,
            }],
        }],
    };
    // Another snappy encoder's choices: stored as literals only.
    let raw = req.encode_to_vec();
    let mut literal = Vec::new();
    varint(&mut literal, raw.len() as u64);
    literal.push(((raw.len() - 1) << 2) as u8);
    literal.extend_from_slice(&raw);
    let out = rewrite(&literal, &Limits::default(), NOW, None).unwrap();
    assert_eq!(out.body, literal);
    // With a stamp the series lacks, it is re-encoded.
    let out = rewrite(&literal, &Limits::default(), NOW, Some(STAMP)).unwrap();
    assert_ne!(out.body, literal);
    assert_eq!(decompress(&out.body), stamped_raw(&req));
}

/// `req` stamped with `STAMP`, encoded.
fn stamped_raw(req: &WriteRequest) -> Vec<u8> {
    let mut stamped = req.clone();
    stamped.stamp(STAMP.node_id, STAMP.node_name);
    stamped.encode_to_vec()
}

#[test]
fn a_body_the_agent_stamped_is_forwarded_as_sent_and_one_forged_series_is_rewritten() {
    let series = |i: usize, id: &str, name: &str| TimeSeries {
        labels: [("__name__", format!("m{i}")), ("job", "node".into())]
            .into_iter()
            .chain([("node_id", id.into()), ("node_name", name.into())])
            .map(|(n, v)| Label {
                name: n.into(),
                value: v,
            })
            .collect(),
        samples: vec![Sample {
            value: i as f64 + 0.5,
            timestamp: NOW,
        }],
    };
    let own = |i| series(i, STAMP.node_id, STAMP.node_name);
    let agent = WriteRequest {
        timeseries: (0..50).map(own).collect(),
    };
    let body = agent.encode_body();
    let out = rewrite(&body, &Limits::default(), NOW, Some(STAMP)).unwrap();
    assert_eq!(out.body, body, "an agent-stamped body is forwarded as sent");
    assert_eq!((out.series, out.samples), (50, 50));

    // One series in the middle claims another node, or lacks the labels, or has the
    // node's id with another node's name; first, in the middle or last: each request comes
    // out as the owned-value path writes it.
    let forged = [
        series(7, "n-2", "db-9"),
        series(7, STAMP.node_id, "db-9"),
        series(7, "n-2", STAMP.node_name),
        TimeSeries {
            labels: own(7).labels[..2].to_vec(),
            samples: own(7).samples,
        },
    ];
    for bad in forged {
        for at in [0, 7, 49] {
            let mut sent = agent.clone();
            sent.timeseries[at] = bad.clone();
            let body = sent.encode_body();
            let out = rewrite(&body, &Limits::default(), NOW, Some(STAMP)).unwrap();
            assert_ne!(out.body, body);
            assert_eq!(decompress(&out.body), stamped_raw(&sent), "forged at {at}");
        }
    }
}

#[test]
fn every_rejection_is_the_slow_paths() {
    let limits = Limits {
        max_series: 2,
        max_labels_per_series: 3,
        max_label_name_bytes: 10,
        max_label_value_bytes: 5,
        reserved_names: &["mine"],
        ..Limits::default()
    };
    let one = |labels: &[(&str, &str)], samples: &[i64]| {
        let mut ts = Vec::new();
        for (n, v) in labels {
            let mut l = Vec::new();
            len_field(&mut l, 1, n.as_bytes());
            len_field(&mut l, 2, v.as_bytes());
            len_field(&mut ts, 1, &l);
        }
        for t in samples {
            let mut s = vec![0x10];
            varint(&mut s, *t as u64);
            len_field(&mut ts, 2, &s);
        }
        ts
    };
    let ok = one(&[("__name__", "up")], &[NOW]);
    let cases: Vec<(Vec<Vec<u8>>, Rejection)> = vec![
        (
            vec![ok.clone(), ok.clone(), one(&[("1bad", "")], &[])],
            Rejection::TooManySeries { count: 3, limit: 2 },
        ),
        (
            vec![
                ok.clone(),
                one(
                    &[("__name__", "up"), ("a", "1"), ("b", "2"), ("c", "3")],
                    &[NOW],
                ),
            ],
            Rejection::TooManyLabels {
                index: 1,
                count: 4,
                limit: 3,
            },
        ),
        (
            vec![one(&[("__name__", "up"), ("1bad", "x")], &[NOW])],
            Rejection::BadLabelName {
                index: 0,
                name: "1bad".into(),
                limit: 10,
            },
        ),
        (
            vec![one(&[("__name__", "up"), ("much_too_long", "x")], &[NOW])],
            Rejection::BadLabelName {
                index: 0,
                name: "much_too_long".into(),
                limit: 10,
            },
        ),
        (
            vec![one(&[("a", "123456"), ("1bad", "")], &[NOW])],
            Rejection::LabelValueTooLong {
                index: 0,
                name: "a".into(),
                len: 6,
                limit: 5,
            },
        ),
        (
            vec![one(&[("b", "1"), ("a", "1"), ("b", "2")], &[NOW])],
            Rejection::DuplicateLabel {
                index: 0,
                name: "b".into(),
            },
        ),
        (
            vec![one(&[("a", "1"), ("a", "2"), ("__name__", "9up")], &[NOW])],
            Rejection::DuplicateLabel {
                index: 0,
                name: "a".into(),
            },
        ),
        (
            vec![one(&[("__name__", "9up")], &[NOW])],
            Rejection::BadMetricName {
                index: 0,
                name: "9up".into(),
            },
        ),
        (
            vec![ok.clone(), one(&[("__name__", "mine")], &[NOW])],
            Rejection::ReservedName {
                index: 1,
                name: "mine".into(),
            },
        ),
        (
            vec![one(&[("a", "b")], &[NOW])],
            Rejection::NoName { index: 0 },
        ),
        (
            vec![ok.clone(), one(&[("__name__", "up")], &[])],
            Rejection::NoSamples { index: 1 },
        ),
        (
            vec![
                ok.clone(),
                one(&[("__name__", "up")], &[NOW, NOW + 600_001, NOW + 700_000]),
            ],
            Rejection::FromTheFuture {
                index: 1,
                timestamp: NOW + 600_001,
                limit_ms: 600_000,
            },
        ),
    ];
    for (i, (series, want)) in cases.into_iter().enumerate() {
        let mut raw = Vec::new();
        for s in &series {
            len_field(&mut raw, 1, s);
        }
        let body = compress(&raw);
        let want = Err(DecodeError::Invalid(want));
        assert_eq!(
            WriteRequest::decode_body(&body, &limits, NOW).map(drop),
            want,
            "case {i}"
        );
        assert_eq!(
            rewrite(&body, &limits, NOW, Some(STAMP)).map(drop),
            want,
            "case {i}"
        );
        assert_eq!(
            rewrite(&body, &limits, NOW, None).map(drop),
            want,
            "case {i}"
        );
    }
}

#[test]
fn a_protobuf_fault_after_a_rejected_series_still_wins() {
    let mut raw = Vec::new();
    len_field(&mut raw, 1, b""); // no __name__
    raw.extend_from_slice(&[0x0a, 0x05, 0x0a]); // truncated
    let body = compress(&raw);
    let want = WriteRequest::decode_body(&body, &Limits::default(), NOW);
    assert!(matches!(want, Err(DecodeError::Protobuf(_))));
    assert_eq!(
        rewrite(&body, &Limits::default(), NOW, Some(STAMP)),
        want.map(|_| unreachable!())
    );
}

#[test]
fn size_and_snappy_faults_are_the_slow_paths() {
    let big = compress(&[0u8; 5000]);
    let cases = [
        (
            big.clone(),
            Limits {
                max_compressed_bytes: big.len() - 1,
                ..Limits::default()
            },
        ),
        (
            big.clone(),
            Limits {
                max_decompressed_bytes: 4999,
                ..Limits::default()
            },
        ),
        (vec![0x80, 0x80, 0x80, 0x80, 0x10], Limits::default()),
        (b"not snappy at all".to_vec(), Limits::default()),
        (Vec::new(), Limits::default()),
        (vec![0x05, 0x00], Limits::default()),
    ];
    for (body, limits) in cases {
        let want = WriteRequest::decode_body(&body, &limits, NOW);
        assert!(want.is_err());
        assert_eq!(
            rewrite(&body, &limits, NOW, Some(STAMP)),
            want.map(|_| unreachable!())
        );
    }
}

/// Unknown fields nested `depth` groups deep, at each message level: prost refuses them
/// past its recursion limit, and so must the transcoder, at the same depth.
#[test]
fn nested_groups_hit_the_recursion_limit_at_the_same_depth() {
    fn groups(depth: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for _ in 0..depth {
            key(&mut out, 7, 3);
        }
        key(&mut out, 8, 0);
        out.push(1);
        for _ in 0..depth {
            key(&mut out, 7, 4);
        }
        out
    }
    let mut verdicts = Vec::new();
    for depth in 94..=101 {
        for level in 0..3 {
            let g = groups(depth);
            let mut label = Vec::new();
            len_field(&mut label, 1, b"__name__");
            len_field(&mut label, 2, b"up");
            let mut ts = Vec::new();
            if level == 2 {
                label.extend_from_slice(&g);
            }
            len_field(&mut ts, 1, &label);
            len_field(&mut ts, 2, &[0x10, 0x01]);
            if level == 1 {
                ts.extend_from_slice(&g);
            }
            let mut raw = Vec::new();
            len_field(&mut raw, 1, &ts);
            if level == 0 {
                raw.extend_from_slice(&g);
            }
            same_protobuf_verdict(&raw, &Limits::default());
            let mut seen = Seen::default();
            agree(
                &mut Rewriter::new(),
                &compress(&raw),
                &Limits::default(),
                Some(STAMP),
                &mut seen,
            );
            verdicts.push(seen.accepted == 1);
        }
    }
    // Both verdicts occur: the boundary lies inside the range tried.
    assert!(verdicts.contains(&true) && verdicts.contains(&false));
}

#[test]
fn varints_are_read_as_prost_reads_them() {
    // Timestamps as 10-byte varints with a last byte of 0, 1 and 2 (overflow), a padded
    // 11-byte one, and one cut short.
    let tails: [&[u8]; 5] = [
        &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00],
        &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
        &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02],
        &[
            0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00,
        ],
        &[0x80, 0x80],
    ];
    let mut seen = Seen::default();
    for tail in tails {
        let mut s = vec![0x10];
        s.extend_from_slice(tail);
        let mut label = Vec::new();
        len_field(&mut label, 1, b"__name__");
        len_field(&mut label, 2, b"up");
        let mut ts = Vec::new();
        len_field(&mut ts, 1, &label);
        len_field(&mut ts, 2, &s);
        let mut raw = Vec::new();
        len_field(&mut raw, 1, &ts);
        same_protobuf_verdict(&raw, &Limits::default());
        agree(
            &mut Rewriter::new(),
            &compress(&raw),
            &Limits::default(),
            Some(STAMP),
            &mut seen,
        );
    }
    // Accepted: the negative one (last byte 1). Refused: i64::MAX, from the future.
    // Malformed: the overflow, the 11-byte one, the cut one.
    assert_eq!(
        (seen.accepted, seen.rejected, seen.malformed),
        (1, 1, 3),
        "{seen:?}"
    );
}

#[test]
fn invalid_utf8_is_refused_even_where_no_check_looks() {
    // In a label value of a series after a rejected one, and in an overwritten name.
    for bad_label in [
        [&[0x0a, 0x01, b'a'][..], &[0x12, 0x01, 0xff]].concat(),
        [&[0x0a, 0x01, 0xff][..], &[0x0a, 0x01, b'a']].concat(),
    ] {
        let mut ts = Vec::new();
        len_field(&mut ts, 1, &bad_label);
        let mut raw = Vec::new();
        len_field(&mut raw, 1, b"");
        len_field(&mut raw, 1, &ts);
        same_protobuf_verdict(&raw, &Limits::default());
        let body = compress(&raw);
        let got = rewrite(&body, &Limits::default(), NOW, Some(STAMP));
        assert!(matches!(got, Err(DecodeError::Protobuf(_))), "{got:?}");
        assert_eq!(
            got,
            WriteRequest::decode_body(&body, &Limits::default(), NOW).map(|_| unreachable!())
        );
    }
}

/// `node_id`, `node_name` and their neighbours in byte order, names of 8 bytes or more
/// sharing a first 8 with another, short names, and names with a zero byte: where `fast`'s
/// 8-byte name keys (and the names it remembers by key) could go wrong.
const EDGE_NAMES: &[&str] = &[
    "a",
    // Invalid, with the key of a valid name.
    "a\0",
    "job\0\0",
    "b",
    "job",
    "node",
    "node_",
    "node_i",
    "node_ic",
    "node_id",
    "node_id_",
    "node_ida",
    "node_ie",
    "node_n",
    "node_na",
    "node_nam",
    "node_namd",
    "node_name",
    "node_name_x",
    "node_namea",
    "node_namf",
    "node_nb",
    "nodf",
    "zz",
    "zzzzzzzz",
    "zzzzzzzzz",
];

/// The single-series request `series` (a `TimeSeries` payload) decided and encoded the
/// owned-value way: the `timeseries` field prost writes, or `None` when refused.
fn prost_series(series: &[u8], limits: &Limits, stamp: Option<NodeStamp<'_>>) -> Option<Vec<u8>> {
    let mut raw = Vec::new();
    len_field(&mut raw, 1, series);
    let mut request = WriteRequest::decode(raw.as_slice()).ok()?;
    limits.check(&request, NOW).ok()?;
    if let Some(s) = stamp {
        request.stamp(s.node_id, s.node_name);
    }
    Some(request.encode_to_vec())
}

/// A series in the encoding `fast::copy_series` takes: sorted distinct names (from
/// `EDGE_NAMES`, `__name__` always), one-byte lengths, canonical samples; a value is now
/// and then non-ASCII or long, and the last label now and then ends the buffer (no samples).
fn canonical_series(rng: &mut Rng) -> Vec<u8> {
    let mut names: Vec<&str> = vec!["__name__"];
    for _ in 0..rng.below(7) {
        names.push(*rng.pick(EDGE_NAMES));
    }
    // As an agent that stamps its own identity sends them, now and then.
    if rng.chance(25) {
        names.extend(["node_id", "node_name"]);
    }
    names.sort_unstable();
    names.dedup();
    let mut out = Vec::new();
    for name in names {
        let value = if name == "__name__" {
            // Invalid ones next to valid ones of the same length, middle and last byte.
            *rng.pick(&["up", "node_load1", "a:b", "node-load1", "9:b"])
        } else if name == "node_id" && rng.chance(50) {
            STAMP.node_id
        } else if name == "node_name" && rng.chance(50) {
            STAMP.node_name
        } else if rng.chance(5) {
            "ünï"
        } else if rng.chance(5) {
            "0123456789012345678901"
        } else {
            *rng.pick(&["x", "web-1:9100", "forged"])
        };
        let mut l = Vec::new();
        len_field(&mut l, 1, name.as_bytes());
        len_field(&mut l, 2, value.as_bytes());
        len_field(&mut out, 1, &l);
    }
    for _ in 0..rng.below(4) {
        // A value; now and then 0.0 left out as prost leaves it, or written out as +0.0 or
        // -0.0 (not prost's encoding).
        let mut s = Vec::new();
        match rng.below(10) {
            0 => {}
            1 => {
                s.push(0x09);
                s.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, if rng.chance(50) { 0x80 } else { 0 }]);
            }
            _ => {
                s.push(0x09);
                s.extend_from_slice(&(1.0 + rng.below(100) as f64).to_bits().to_le_bytes());
            }
        }
        s.push(0x10);
        let ts = if rng.chance(5) {
            NOW + 10 * 60 * 1000 + 1
        } else {
            NOW
        };
        varint(&mut s, ts as u64);
        len_field(&mut out, 2, &s);
    }
    out
}

#[test]
fn the_one_pass_copy_writes_what_prost_writes_or_declines() {
    let mut rng = Rng(0x5eed_0fc0_ffee_0042);
    let all_limits = [Limits::default(), tight_limits()];
    let (mut copied, mut declined, mut kept_stamped) = (0, 0, 0);
    // Names found valid are remembered per request: one memory per pair of limits here,
    // kept over all series (as a request of all of them would), or now and then a fresh
    // one. The series are generated first, as the memory holds references into them.
    let all: Vec<Vec<u8>> = (0..40_000)
        .map(|i| {
            if i % 2 == 0 {
                canonical_series(&mut rng)
            } else {
                series(&mut rng)
            }
        })
        .collect();
    let mut memories = [crate::fast::SeenNames::new(), crate::fast::SeenNames::new()];
    for (i, series) in all.iter().enumerate() {
        for (limits, memory) in all_limits.iter().zip(&mut memories) {
            for stamp in [Some(STAMP), None] {
                let mut fresh = crate::fast::SeenNames::new();
                let seen = if i % 3 == 0 { &mut fresh } else { &mut *memory };
                let mut stamp_buf = Vec::new();
                let fields =
                    stamp.map(|s| crate::fast::StampFields::encode(s, limits, &mut stamp_buf));
                // Something already in `out` stays as it was.
                let mut out = vec![7u8; 3];
                let newest = limits.max_future_ms + NOW;
                match crate::fast::read_series(series, limits, newest, fields, seen) {
                    Some(fast) => {
                        fast.write(series, fields, &mut out);
                        let want = prost_series(series, limits, stamp)
                            .unwrap_or_else(|| panic!("copied what prost refuses: {series:02x?}"));
                        assert_eq!(out.get(..3), Some(&[7u8; 3][..]));
                        assert_eq!(out.get(3..), Some(want.as_slice()), "{series:02x?}");
                        let request = WriteRequest::decode(want.as_slice()).unwrap();
                        assert_eq!(fast.samples, request.samples());
                        // Unchanged: the series' own bytes are what prost writes (the
                        // converse need not hold: the stamp's labels apart are rewritten).
                        let mut as_sent = Vec::new();
                        len_field(&mut as_sent, 1, series);
                        assert!(!fast.labels.unchanged || want == as_sent, "{series:02x?}");
                        if fast.labels.unchanged && stamp.is_some() {
                            kept_stamped += 1;
                        }
                        copied += 1;
                    }
                    None => declined += 1,
                }
            }
        }
    }
    assert!(copied > 15_000, "copied {copied}, declined {declined}");
    assert!(
        kept_stamped > 200,
        "kept {kept_stamped} stamped series as sent"
    );
    assert!(declined > 40_000, "copied {copied}, declined {declined}");
}

/// `raw` changed `n` times the ways a corrupted or hostile body might differ from a good
/// one: a byte replaced or flipped, inserted or removed, or the rest cut off.
fn mutate(rng: &mut Rng, raw: &mut Vec<u8>, n: usize) {
    for _ in 0..n {
        if raw.is_empty() {
            return;
        }
        let at = rng.below(raw.len());
        match rng.below(5) {
            0 => raw[at] = rng.next() as u8,
            1 => raw[at] ^= 1 << rng.below(8),
            2 => {
                raw.remove(at);
            }
            3 => raw.insert(at, rng.next() as u8),
            _ => raw.truncate(at),
        }
    }
}

#[test]
fn repeated_and_altered_pushes_come_out_as_when_checked_afresh() {
    let mut rng = Rng(0x0bad_cafe_f00d_1234);
    let mut rewriter = Rewriter::new();
    let mut seen = Seen::default();
    let all_limits = [Limits::default(), tight_limits()];
    let other = NodeStamp {
        node_id: "n-2",
        node_name: "db-1",
    };
    for trial in 0..4000 {
        // Mostly series that pass under the default limits, now and then any.
        let mut base = Vec::new();
        for _ in 0..1 + rng.below(8) {
            let mut series = canonical_series(&mut rng);
            while !rng.chance(5) && prost_series(&series, &Limits::default(), None).is_none() {
                series = canonical_series(&mut rng);
            }
            len_field(&mut base, 1, &series);
        }
        let limits = &all_limits[trial % 2];
        let stamp = match rng.below(4) {
            0 => None,
            1 => Some(other),
            _ => Some(STAMP),
        };
        // First seen, then again (its labels recalled; as another encoder would compress
        // it, to tell forwarding as sent apart), then under the other limits and as
        // another sender (not recalled from this one's).
        agree(&mut rewriter, &compress(&base), limits, stamp, &mut seen);
        agree(
            &mut rewriter,
            &compress_literally(&base),
            limits,
            stamp,
            &mut seen,
        );
        let tighter = &all_limits[(trial + 1) % 2];
        agree(&mut rewriter, &compress(&base), tighter, stamp, &mut seen);
        let another = if stamp == Some(other) {
            Some(STAMP)
        } else {
            Some(other)
        };
        agree(&mut rewriter, &compress(&base), limits, another, &mut seen);
        // Altered in a few bytes, or one series left out or put first.
        let mut altered = base.clone();
        let n = 1 + rng.below(3);
        mutate(&mut rng, &mut altered, n);
        agree(&mut rewriter, &compress(&altered), limits, stamp, &mut seen);
        let mut shifted = Vec::new();
        len_field(&mut shifted, 1, &canonical_series(&mut rng));
        shifted.extend_from_slice(&base);
        agree(&mut rewriter, &compress(&shifted), limits, stamp, &mut seen);
    }
    assert!(seen.recalled > 5000, "{seen:?}");
    assert!(seen.accepted > 5000, "{seen:?}");
    assert!(seen.rejected > 5000, "{seen:?}");
    assert!(seen.forwarded_as_sent > 200, "{seen:?}");
}

#[test]
fn a_recalled_push_still_has_its_samples_and_its_sender_checked() {
    let one = |i: usize, name: &str, ts: i64| TimeSeries {
        labels: [("__name__", format!("m{i}")), ("job", "node".into())]
            .into_iter()
            .chain([("node_id", "n-1".into()), ("node_name", name.into())])
            .map(|(n, v)| Label {
                name: n.into(),
                value: v,
            })
            .collect(),
        samples: vec![Sample {
            value: 1.5,
            timestamp: ts,
        }],
    };
    let push = |ts: i64| WriteRequest {
        timeseries: (0..20).map(|i| one(i, STAMP.node_name, ts)).collect(),
    };
    let limits = Limits::default();
    let mut rewriter = Rewriter::new();
    let body = push(NOW).encode_body();
    assert_eq!(
        rewriter
            .rewrite(&body, &limits, NOW, Some(STAMP))
            .unwrap()
            .body,
        body
    );
    // The same labels, new samples: recalled, forwarded as sent.
    let later = push(NOW + 5000).encode_body();
    let out = rewriter
        .rewrite(&later, &limits, NOW + 5000, Some(STAMP))
        .unwrap();
    assert_eq!((out.body, out.recalled), (later.clone(), 20));
    // A sample from too far ahead is refused though its labels are remembered.
    let mut ahead = push(NOW + 5000);
    ahead.timeseries[3].samples[0].timestamp = NOW + 5000 + limits.max_future_ms + 1;
    let refused = rewriter.rewrite(&ahead.encode_body(), &limits, NOW + 5000, Some(STAMP));
    assert!(
        matches!(
            refused,
            Err(DecodeError::Invalid(Rejection::FromTheFuture { .. }))
        ),
        "{refused:?}"
    );
    // Another node sending the same bytes is stamped as itself.
    let other = NodeStamp {
        node_id: "n-2",
        node_name: "db-1",
    };
    let out = rewriter
        .rewrite(&later, &limits, NOW + 5000, Some(other))
        .unwrap();
    let labels = &content(&decompress(&out.body))[0].0;
    assert!(
        labels.contains(&("node_id".into(), "n-2".into())),
        "{labels:?}"
    );
    assert!(
        labels.contains(&("node_name".into(), "db-1".into())),
        "{labels:?}"
    );
    // Tighter limits refuse what passed under the old ones.
    let tight = Limits {
        max_label_value_bytes: 3,
        ..Limits::default()
    };
    let refused = rewriter.rewrite(&later, &tight, NOW + 5000, Some(STAMP));
    assert!(
        matches!(
            refused,
            Err(DecodeError::Invalid(Rejection::LabelValueTooLong { .. }))
        ),
        "{refused:?}"
    );
    // One series forged in a push that repeats the rest: rewritten, the rest as sent.
    let mut forged = push(NOW + 5000);
    forged.timeseries[11] = one(11, "db-9", NOW + 5000);
    let out = rewriter
        .rewrite(&forged.encode_body(), &limits, NOW + 5000, Some(STAMP))
        .unwrap();
    assert_eq!(decompress(&out.body), push(NOW + 5000).encode_to_vec());
}

/// A request of `count` series `m{i="<from + k>"}`, compressed.
fn numbered(from: usize, count: usize) -> Vec<u8> {
    WriteRequest {
        timeseries: (from..from + count)
            .map(|i| TimeSeries {
                labels: vec![
                    Label {
                        name: "__name__".into(),
                        value: "m".into(),
                    },
                    Label {
                        name: "i".into(),
                        value: i.to_string(),
                    },
                ],
                samples: vec![Sample {
                    value: 1.0,
                    timestamp: NOW,
                }],
            })
            .collect(),
    }
    .encode_body()
}

#[test]
fn admission_sees_the_series_not_sent_lately_and_a_refusal_is_not_remembered() {
    let limits = Limits::default();
    // Whether the request came out, and the fingerprints admission was shown.
    let ask = |rewriter: &mut Rewriter, body: &[u8], yes: bool| {
        let mut seen = Vec::new();
        let out = rewriter
            .rewrite_admitted(body, &limits, NOW, Some(STAMP), |fresh: &[u64]| {
                seen = fresh.to_vec();
                if yes { Ok(()) } else { Err("refused") }
            })
            .unwrap();
        if !yes {
            assert_eq!(out, Err("refused"), "the refusal is the outcome");
        }
        (out.is_ok(), seen)
    };
    let mut rewriter = Rewriter::new();
    // Refused: nothing comes out, and nothing is remembered.
    let (out, seen) = ask(&mut rewriter, &numbered(0, 3), false);
    assert!(!out && seen.len() == 3);
    let (out, first) = ask(&mut rewriter, &numbered(0, 3), true);
    assert!(
        out && first.len() == 3,
        "the refused request was not remembered"
    );
    // The same series again: recalled, none fresh.
    let (out, seen) = ask(&mut rewriter, &numbered(0, 3), true);
    assert!(out && seen.is_empty());
    // Another request from the same sender: its fingerprints are its own.
    let (out, seen) = ask(&mut rewriter, &numbered(3, 2), true);
    assert!(out && seen.len() == 2);
    assert!(seen.iter().all(|f| !first.contains(f)));
    // A fresh rewriter (another thread, or forgotten) gives the same fingerprints.
    let (_, again) = ask(&mut Rewriter::new(), &numbered(0, 3), true);
    assert_eq!(again, first);
}
