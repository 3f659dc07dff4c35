//! One pass over a decompressed `WriteRequest`: read each series (`scan`), check it
//! (`Limits`), write it out again (`emit`), stamped or not, without decoding into owned
//! values.

use crate::Limits;
use crate::emit::{LostSpan, SeriesWriter};
use crate::fast::{FastSeries, SeenNames, StampFields, read_samples, read_series as read_fast};
use crate::fingerprint;
use crate::limits::Rejection;
use crate::names::NodeStamp;
use crate::names::{self, is_identity_label};
use crate::recall::{Known, Template};
use crate::scan::{Encoded, LabelRef, SeriesSink, read_series};
use crate::wire::{LEN, Malformed, RECURSION_LIMIT, Reader, varint_len};

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
    /// Whether `raw` itself is the protobuf to forward (`out` is then left empty): every
    /// field of it comes out as it went in.
    pub(crate) unchanged: bool,
    /// Series whose labels were found in `before`, not checked again.
    pub(crate) recalled: usize,
}

/// The output while it may still be `raw` itself: the bytes of `raw` from `kept_from` up to
/// the field at hand come out as they are and are not copied into `out` yet. A field that
/// comes out otherwise first copies them (`diverge`) and is then written; runs of unchanged
/// fields after it are copied whole, at the next divergence or at the end.
struct Lazy<'o> {
    out: &'o mut Vec<u8>,
    /// Where the bytes of `raw` not copied yet start.
    kept_from: usize,
    /// Whether everything so far came out as it went in.
    unchanged: bool,
}

impl<'o> Lazy<'o> {
    /// Copies the unchanged bytes before `field_start` and returns `out`, to write the field
    /// that starts there, which ends at `field_end`.
    fn diverge(&mut self, raw: &[u8], field_start: usize, field_end: usize) -> &mut Vec<u8> {
        self.out
            .extend_from_slice(raw.get(self.kept_from..field_start).unwrap_or_default());
        self.kept_from = field_end;
        self.unchanged = false;
        self.out
    }

    /// Copies the unchanged bytes at the end of `raw`, unless all of it is unchanged.
    fn finish(self, raw: &[u8]) -> bool {
        if !self.unchanged {
            self.out
                .extend_from_slice(raw.get(self.kept_from..).unwrap_or_default());
        }
        self.unchanged
    }
}

/// Reads the decompressed `raw` request, checks it against `limits` and writes into `out`
/// the protobuf `encode_body` would compress (stamped when `stamp` is `Some`), or leaves
/// `out` empty and says `Tally::unchanged` when that is `raw` itself. `samples` and
/// `stamp_buf` are scratch. Series in the common case go through `fast::read_series`, the
/// rest through `scan`, `Limits::check_series` and `emit`. Protobuf faults anywhere win over
/// rejections; `TooManySeries` wins over a series' rejection; among series, the first
/// rejected wins.
///
/// `before` is the sender's request this one may repeat (from `recall`): a series whose
/// labels are those its series at the same place had, when they passed, only has its
/// samples checked. `known` is filled with what `recall` keeps of this request.
#[allow(clippy::too_many_arguments)]
pub(crate) fn transcode(
    raw: &[u8],
    limits: &Limits,
    now_ms: i64,
    stamp: Option<NodeStamp<'_>>,
    out: &mut Vec<u8>,
    samples: &mut Vec<u8>,
    stamp_buf: &mut Vec<u8>,
    before: Option<&Template>,
    known: &mut Vec<Known>,
    // Where the fingerprints of the series not recalled go, when they are wanted.
    mut fresh: Option<&mut Vec<u64>>,
) -> Result<Tally, Fault> {
    out.clear();
    known.clear();
    if let Some(fresh) = fresh.as_mut() {
        fresh.clear();
    }
    let newest_allowed = limits.newest_allowed(now_ms);
    // The stamp's two labels, encoded once for all series.
    let stamp_fields = stamp.map(|s| StampFields::encode(s, limits, stamp_buf));
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
        unchanged: false,
        recalled: 0,
    };
    let mut lazy = Lazy {
        out,
        kept_from: 0,
        unchanged: true,
    };
    let mut r = Reader::new(raw);
    while !r.is_empty() {
        let field_start = r.offset();
        let (tag, wire_type) = r.key()?;
        if tag != 1 {
            r.skip(wire_type, tag, RECURSION_LIMIT)?;
            // Left out.
            lazy.diverge(raw, field_start, r.offset());
            continue;
        }
        if wire_type != LEN {
            return Err(Fault::Malformed);
        }
        let payload = r.len_delimited()?;
        let field_end = r.offset();
        let at = field_end - payload.len();
        // Once the request is refused, the rest is only read for protobuf faults.
        let live = rejection.is_none() && tally.series < limits.max_series;
        // Labels that passed before at this place, the same bytes again: only the samples
        // are read.
        let recalled = || {
            let (labels, found) = before?.labels(tally.series)?;
            if payload.get(..found.end)? != labels {
                return None;
            }
            let samples = read_samples(payload.get(found.end..)?, newest_allowed)?;
            Some(FastSeries {
                samples,
                labels: found,
            })
        };
        let fast = if live {
            match recalled() {
                Some(fast) => {
                    tally.recalled += 1;
                    Some(fast)
                }
                None => {
                    let fast = read_fast(payload, limits, newest_allowed, stamp_fields, &mut seen);
                    if let Some(fresh) = fresh.as_mut()
                        && let Some(labels) =
                            fast.as_ref().and_then(|f| payload.get(..f.labels.end))
                    {
                        fresh.push(fingerprint::of_encoded(labels));
                    }
                    fast
                }
            }
        } else {
            None
        };
        if let Some(fast) = fast {
            known.push(Known {
                at,
                labels: Some(fast.labels),
            });
            // The key is one byte; the length as written again is minimal.
            let minimal =
                field_end - field_start == 1 + varint_len(payload.len() as u64) + payload.len();
            if !(fast.labels.unchanged && minimal) {
                let out = lazy.diverge(raw, field_start, field_end);
                fast.write(payload, stamp_fields, out);
            }
            tally.series += 1;
            tally.samples += fast.samples;
            continue;
        }
        known.push(Known { at, labels: None });
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
                    if let Some(fresh) = fresh.as_mut() {
                        fresh.push(fingerprint::of_labels(
                            labels.iter().map(|l| (l.name, l.value)),
                        ));
                    }
                    let out = lazy.diverge(raw, field_start, field_end);
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
    if let Some(e) = rejection {
        return Err(e.into());
    }
    tally.unchanged = lazy.finish(raw);
    Ok(tally)
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
