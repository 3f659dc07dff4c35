//! The server's fast path: decompress, validate, stamp and re-encode a write request in one
//! pass over borrowed bytes, with the outcome of [`WriteRequest::decode_body`] followed by
//! [`WriteRequest::stamp`] and [`WriteRequest::encode_body`], at a fraction of the cost.
//! This module holds the buffers and snappy; `transcode` does the protobuf.

use std::cell::RefCell;
use std::convert::Infallible;

use crate::names::NodeStamp;
use crate::recall::{Known, Recall};
use crate::transcode::{Fault, transcode};
use crate::{DecodeError, Limits, WriteRequest};

/// Asked whether a valid request may pass, with the fingerprints of its series not sent
/// lately by its sender; its refusal is the request's outcome.
type Admit<'a, E> = &'a mut dyn FnMut(&[u64]) -> Result<(), E>;

/// An accepted request, ready to forward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewritten {
    /// The snappy-compressed (block format) protobuf `WriteRequest` to forward.
    pub body: Vec<u8>,
    /// Series in the request.
    pub series: usize,
    /// Samples in the request, all series together.
    pub samples: usize,
    /// Series whose labels were those of the sender's recent request, not checked again.
    pub recalled: usize,
}

/// Scratch buffers and snappy state reused from one request to the next, and the labels of
/// recent requests by sender. One per thread is enough; [`rewrite`] keeps one per thread
/// for you. A `Rewriter` keeps its buffers at the largest size a request needed (at most
/// about `max_decompressed_bytes` three times over), and up to 16 MiB of recent requests
/// (each up to 4 MiB decompressed), so that a request repeating the labels of one of its
/// sender's recent ones (as an agent's pushes do) has only its samples checked where its
/// labels are the same bytes.
#[derive(Debug)]
pub struct Rewriter {
    decoder: snap::raw::Decoder,
    encoder: snap::raw::Encoder,
    /// The decompressed request.
    raw: Vec<u8>,
    /// The protobuf to forward, before compression.
    out: Vec<u8>,
    /// One series' samples, encoded, while its labels are not written yet.
    samples: Vec<u8>,
    /// The stamp's two labels, encoded.
    stamp: Vec<u8>,
    /// The compressed protobuf, before it is copied out.
    compressed: Vec<u8>,
    /// Recent accepted requests, by sender.
    recall: Recall,
    /// What `recall` is to keep of the request at hand.
    known: Vec<Known>,
    /// Fingerprints of the request's series that its sender did not send lately.
    fresh: Vec<u64>,
}

/// Buffers larger than this (bytes) are released after a request rather than kept for
/// the next one by [`rewrite`], so that one huge request does not pin memory to a thread.
const KEEP_BYTES: usize = 4 * 1024 * 1024;

thread_local! {
    static REWRITER: RefCell<Rewriter> = RefCell::new(Rewriter::new());
}

/// [`Rewriter::rewrite`] with a scratch [`Rewriter`] kept per thread (its buffers released
/// after a request that needed more than 4 MiB of any).
pub fn rewrite(
    body: &[u8],
    limits: &Limits,
    now_ms: i64,
    stamp: Option<NodeStamp<'_>>,
) -> Result<Rewritten, DecodeError> {
    with_rewriter(|rewriter| rewriter.run::<Infallible>(body, limits, now_ms, stamp, None))
        .map(admitted_always)
}

/// The outcome of a request no admission was asked about.
fn admitted_always(outcome: Result<Rewritten, Infallible>) -> Rewritten {
    match outcome {
        Ok(rewritten) => rewritten,
        Err(never) => match never {},
    }
}

/// Runs `work` with this thread's scratch [`Rewriter`], its buffers released afterwards
/// above 4 MiB; with a new one if the thread's is not at hand.
fn with_rewriter<T>(mut work: impl FnMut(&mut Rewriter) -> T) -> T {
    let pooled = REWRITER.try_with(|cell| {
        let mut rewriter = cell.try_borrow_mut().ok()?;
        let result = work(&mut rewriter);
        rewriter.release_above(KEEP_BYTES);
        Some(result)
    });
    match pooled {
        Ok(Some(result)) => result,
        // The thread is shutting down, or (not possible today) re-entered: no reuse.
        _ => work(&mut Rewriter::new()),
    }
}

/// [`rewrite`], asking `admit` first whether a valid request may pass, with the
/// fingerprints of its series that its sender did not send in a recent request (see
/// [`Rewriter::rewrite_admitted`]); its refusal when it says no.
pub fn rewrite_admitted<E>(
    body: &[u8],
    limits: &Limits,
    now_ms: i64,
    stamp: Option<NodeStamp<'_>>,
    mut admit: impl FnMut(&[u64]) -> Result<(), E>,
) -> Result<Result<Rewritten, E>, DecodeError> {
    with_rewriter(|rewriter| rewriter.run(body, limits, now_ms, stamp, Some(&mut admit)))
}

impl Default for Rewriter {
    fn default() -> Self {
        Self {
            decoder: snap::raw::Decoder::new(),
            encoder: snap::raw::Encoder::new(),
            raw: Vec::new(),
            out: Vec::new(),
            samples: Vec::new(),
            stamp: Vec::new(),
            compressed: Vec::new(),
            recall: Recall::default(),
            known: Vec::new(),
            fresh: Vec::new(),
        }
    }
}

impl Rewriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes, validates, optionally stamps, and re-encodes a request body.
    ///
    /// The outcome is that of `WriteRequest::decode_body(body, limits, now_ms)`, then
    /// `stamp(node_id, node_name)` when `stamp` is `Some`, then `encode_body()`:
    /// - the same [`DecodeError`] for a refused body (sizes first, before any allocation
    ///   proportional to them; then snappy; then protobuf faults anywhere in the body, with
    ///   prost's own wording; then [`Rejection::TooManySeries`]; then the first series'
    ///   [`Rejection`] in the order [`Limits::check`] finds it);
    /// - for an accepted body, `Rewritten::body` decompresses to exactly the bytes
    ///   `encode_body` would produce (fields Perch does not know are dropped; with a stamp,
    ///   any `node_id`/`node_name` the sender put is replaced and each series' labels are
    ///   sorted by name; without one, labels stay in the sender's order), and is
    ///   byte-for-byte `encode_body`'s output, with one exception: when the decompressed
    ///   body already is exactly what re-encoding would produce (with a stamp: every series
    ///   carries the stamp's `node_id` and `node_name` already), `body` is the sender's
    ///   compressed bytes unchanged (same protobuf, perhaps another snappy encoder's
    ///   choices).
    pub fn rewrite(
        &mut self,
        body: &[u8],
        limits: &Limits,
        now_ms: i64,
        stamp: Option<NodeStamp<'_>>,
    ) -> Result<Rewritten, DecodeError> {
        self.run::<Infallible>(body, limits, now_ms, stamp, None)
            .map(admitted_always)
    }

    /// [`Rewriter::rewrite`], asking `admit` whether a valid request may pass, with the
    /// fingerprints of its series whose labels its sender did not send in one of its
    /// recent requests (a sender's series the first time, and again once forgotten: a
    /// series may be given twice). Refused, the request is not remembered either, so its
    /// series count as unsent again next time. Fingerprints are keyed per process; one
    /// series gives the same one each time, unless its sender changes how it encodes it.
    pub fn rewrite_admitted<E>(
        &mut self,
        body: &[u8],
        limits: &Limits,
        now_ms: i64,
        stamp: Option<NodeStamp<'_>>,
        mut admit: impl FnMut(&[u64]) -> Result<(), E>,
    ) -> Result<Result<Rewritten, E>, DecodeError> {
        self.run(body, limits, now_ms, stamp, Some(&mut admit))
    }

    fn run<E>(
        &mut self,
        body: &[u8],
        limits: &Limits,
        now_ms: i64,
        stamp: Option<NodeStamp<'_>>,
        // None: no admission, and no fingerprints worked out.
        mut admit: Option<Admit<'_, E>>,
    ) -> Result<Result<Rewritten, E>, DecodeError> {
        let size = crate::checked_decompressed_len(body, limits)?;
        // Every byte of `raw[..size]` is written by a successful decompression, so the
        // buffer is not cleared, only sized.
        if self.raw.len() < size {
            self.raw.resize(size, 0);
        }
        self.raw.truncate(size);
        self.decoder
            .decompress(body, &mut self.raw)
            .map_err(|e| DecodeError::Snappy(e.to_string()))?;
        let slot = self.recall.find(stamp, limits, &self.raw);
        let tally = match transcode(
            &self.raw,
            limits,
            now_ms,
            stamp,
            &mut self.out,
            &mut self.samples,
            &mut self.stamp,
            slot.and_then(|slot| self.recall.get(slot)),
            &mut self.known,
            admit.is_some().then_some(&mut self.fresh),
        ) {
            Ok(tally) => tally,
            Err(Fault::Invalid(rejection)) => return Err(rejection.into()),
            Err(Fault::Malformed) => return slow_path(&self.raw, limits, now_ms, stamp, admit),
        };
        if let Some(admit) = admit.as_mut()
            && let Err(refused) = admit(&self.fresh)
        {
            return Ok(Err(refused));
        }
        // The sender's bytes, when they hold exactly what re-encoding would produce (an
        // agent that stamps its own identity, as perch-admin does): nothing to compress.
        let forwarded = if tally.unchanged || self.out == self.raw {
            body.to_vec()
        } else {
            // Into scratch that is only zeroed when it grows, then copied out at its size.
            let need = snap::raw::max_compress_len(self.out.len());
            if self.compressed.len() < need {
                self.compressed.resize(need, 0);
            }
            // As in `encode_body`: compression fails only beyond 4 GiB, then the body is empty.
            match self.encoder.compress(&self.out, &mut self.compressed) {
                Ok(n) => self.compressed.get(..n).unwrap_or_default().to_vec(),
                Err(_) => Vec::new(),
            }
        };
        self.recall
            .keep(slot, stamp, limits, &mut self.raw, &mut self.known);
        Ok(Ok(Rewritten {
            body: forwarded,
            series: tally.series,
            samples: tally.samples,
            recalled: tally.recalled,
        }))
    }

    /// Forgets the requests remembered so far: the next ones are checked in full.
    pub fn forget(&mut self) {
        self.recall.clear();
    }

    /// Drops any scratch buffer whose capacity exceeds `bytes`.
    fn release_above(&mut self, bytes: usize) {
        for buf in [
            &mut self.raw,
            &mut self.out,
            &mut self.samples,
            &mut self.stamp,
            &mut self.compressed,
        ] {
            if buf.capacity() > bytes {
                *buf = Vec::new();
            }
        }
    }
}

/// The decoded-then-re-encoded path, used for a body the transcoder found malformed: it
/// yields prost's own error (and, should prost ever accept what the transcoder refused, the
/// slow path's result rather than a different one).
fn slow_path<E>(
    raw: &[u8],
    limits: &Limits,
    now_ms: i64,
    stamp: Option<NodeStamp<'_>>,
    admit: Option<Admit<'_, E>>,
) -> Result<Result<Rewritten, E>, DecodeError> {
    let mut request = WriteRequest::decode_raw(raw, limits, now_ms)?;
    if let Some(admit) = admit {
        let fresh: Vec<u64> = request
            .timeseries
            .iter()
            .map(|s| {
                crate::fingerprint::of_labels(
                    s.labels
                        .iter()
                        .map(|l| (l.name.as_bytes(), l.value.as_bytes())),
                )
            })
            .collect();
        if let Err(refused) = admit(&fresh) {
            return Ok(Err(refused));
        }
    }
    if let Some(s) = stamp {
        request.stamp(s.node_id, s.node_name);
    }
    Ok(Ok(Rewritten {
        body: request.encode_body(),
        series: request.timeseries.len(),
        samples: request.samples(),
        recalled: 0,
    }))
}
