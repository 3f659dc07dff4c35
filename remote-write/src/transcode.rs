//! One pass over a decompressed `WriteRequest`: read each series (`scan`), check it
//! (`Limits`), write it out again (`emit`), stamped or not, without decoding into owned
//! values.

use crate::Limits;
use crate::emit::{LostSpan, SeriesWriter};
use crate::fast::{SeenNames, StampFields, copy_series};
use crate::limits::Rejection;
use crate::names::{self, is_identity_label};
use crate::rewrite::NodeStamp;
use crate::scan::{Encoded, LabelRef, SeriesSink, read_series};
use crate::wire::{LEN, Malformed, RECURSION_LIMIT, Reader};

/// Why the one-pass transcoder stopped.
#[derive(Debug)]
pub(crate) enum Fault {
    Malformed,
    Invalid(Rejection),
}

impl From<Malformed> for Fault {
    fn from(_: Malformed) -> Self {
        Fault::Malformed
    }
}

impl From<Rejection> for Fault {
    fn from(r: Rejection) -> Self {
        Fault::Invalid(r)
    }
}

/// Counts of an accepted request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tally {
    pub(crate) series: usize,
    pub(crate) samples: usize,
}

/// Reads the decompressed `raw` request, checks it against `limits` and writes into `out`
/// the protobuf `encode_body` would compress (stamped when `stamp` is `Some`). `samples` and
/// `stamp_buf` are scratch. Series in the common case go through `fast::copy_series`, the
/// rest through `scan`, `Limits::check_series` and `emit`. Protobuf faults anywhere win over
/// rejections; `TooManySeries` wins over a series' rejection; among series, the first
/// rejected wins.
pub(crate) fn transcode(
    raw: &[u8],
    limits: &Limits,
    now_ms: i64,
    stamp: Option<NodeStamp<'_>>,
    out: &mut Vec<u8>,
    samples: &mut Vec<u8>,
    stamp_buf: &mut Vec<u8>,
) -> Result<Tally, Fault> {
    out.clear();
    let newest_allowed = limits.newest_allowed(now_ms);
    // The stamp's two labels, encoded once for all series.
    let stamp_fields = stamp.map(|s| StampFields::encode(s, stamp_buf));
    let identity = stamp.zip(stamp_fields).map(|(s, fields)| {
        [
            LabelRef {
                name: b"node_id",
                value: s.node_id.as_bytes(),
                encoded: Encoded::Ready(fields.node_id),
            },
            LabelRef {
                name: b"node_name",
                value: s.node_name.as_bytes(),
                encoded: Encoded::Ready(fields.node_name),
            },
        ]
    });
    let mut seen = SeenNames::new();
    // Only the general path uses these: they allocate on its first use.
    let mut labels: Vec<LabelRef<'_>> = Vec::new();
    let mut ordered: Vec<LabelRef<'_>> = Vec::new();
    let mut rejection: Option<Rejection> = None;
    let mut tally = Tally {
        series: 0,
        samples: 0,
    };
    let mut r = Reader::new(raw);
    while !r.is_empty() {
        let (tag, wire_type) = r.key()?;
        if tag != 1 {
            r.skip(wire_type, tag, RECURSION_LIMIT)?;
            continue;
        }
        if wire_type != LEN {
            return Err(Fault::Malformed);
        }
        let payload = r.len_delimited()?;
        // Once the request is refused, the rest is only read for protobuf faults.
        let live = rejection.is_none() && tally.series < limits.max_series;
        if live
            && let Some(count) = copy_series(
                payload,
                limits,
                newest_allowed,
                stamp_fields,
                &mut seen,
                out,
            )
        {
            tally.series += 1;
            tally.samples += count;
            continue;
        }
        let facts = read_series(
            payload,
            SeriesSink {
                labels: &mut labels,
                label_cap: if live {
                    limits.max_labels_per_series
                } else {
                    0
                },
                samples: if live { Some(&mut *samples) } else { None },
                newest_allowed,
            },
        )?;
        if live {
            match limits.check_series(tally.series, facts, &labels, |l| (l.name, l.value)) {
                Ok(ascending) => {
                    let mut w = SeriesWriter::begin(out, payload);
                    let written = match &identity {
                        None => labels.iter().try_for_each(|l| w.label(l)),
                        Some(identity) if ascending => merge_stamp(&labels, identity, &mut w),
                        Some(identity) => {
                            sort_stamped(&labels, identity, &mut ordered);
                            ordered.iter().try_for_each(|l| w.label(l))
                        }
                    };
                    // A lost span is not reachable; prost's path then gives the answer.
                    written
                        .and_then(|()| w.finish(samples))
                        .map_err(|LostSpan| Fault::Malformed)?;
                }
                Err(e) => rejection = Some(e),
            }
        }
        tally.series += 1;
        tally.samples += facts.sample_count;
    }
    limits.check_series_count(tally.series)?;
    match rejection {
        Some(e) => Err(e.into()),
        None => Ok(tally),
    }
}

/// Writes `labels`, sorted by name already, without any `node_id`/`node_name`, with the
/// stamp's two merged in at their places.
fn merge_stamp(
    labels: &[LabelRef<'_>],
    identity: &[LabelRef<'_>; 2],
    w: &mut SeriesWriter<'_, '_>,
) -> Result<(), LostSpan> {
    let mut pending = identity.as_slice();
    for label in labels.iter().filter(|l| !is_identity_label(l.name)) {
        while let [first, rest @ ..] = pending
            && names::cmp(first.name, label.name).is_lt()
        {
            w.label(first)?;
            pending = rest;
        }
        w.label(label)?;
    }
    pending.iter().try_for_each(|l| w.label(l))
}

/// `labels` without any `node_id`/`node_name`, plus the stamp's, sorted by name (the names
/// are distinct: the checks refused duplicates).
fn sort_stamped<'a>(
    labels: &[LabelRef<'a>],
    identity: &[LabelRef<'a>; 2],
    into: &mut Vec<LabelRef<'a>>,
) {
    into.clear();
    into.extend(labels.iter().filter(|l| !is_identity_label(l.name)));
    into.extend_from_slice(identity);
    into.sort_unstable_by(|a, b| names::cmp(a.name, b.name));
}
