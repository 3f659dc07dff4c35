//! What a [`crate::Rewriter`] remembers of the requests it accepted lately, by sender: an
//! agent pushes the same series interval after interval, only their samples changing, so
//! a series whose labels are byte for byte those of the same series in one of the sender's
//! recent requests, already found to pass, is not checked again (its samples always are).
//! Nothing is taken on trust from a hash or a sender's word: the labels are compared with
//! the bytes that passed, and the outcome of the checks depends on those bytes, the limits
//! and the stamp alone, all three the same.

use crate::Limits;
use crate::fast::FastLabels;
use crate::names::NodeStamp;

/// Requests larger than this (bytes, decompressed) are not remembered.
const KEEP_REQUEST_BYTES: usize = 4 * 1024 * 1024;
/// At most this many bytes of remembered requests, all senders together.
const KEEP_BYTES: usize = 16 * 1024 * 1024;
/// At most this many requests are remembered for one sender (an agent with more series
/// than fit in one request sends several a round).
const PER_SENDER: usize = 4;

/// Recent accepted requests, by sender; the least recently used are forgotten first.
#[derive(Debug, Default)]
pub(crate) struct Recall {
    kept: Vec<Template>,
    clock: u64,
}

/// One accepted request: its decompressed bytes, and for each series (in order) its labels
/// if they passed the common case's checks.
#[derive(Debug)]
pub(crate) struct Template {
    who: Who,
    raw: Vec<u8>,
    series: Vec<Known>,
    used: u64,
}

/// Whose request, and under which limits: what the checks' outcome depends on besides the
/// bytes.
#[derive(Debug, PartialEq, Eq)]
struct Who {
    stamp: Option<(String, String)>,
    limits: Limits,
}

impl Who {
    fn is(&self, stamp: Option<NodeStamp<'_>>, limits: &Limits) -> bool {
        let same_stamp = match (&self.stamp, stamp) {
            (None, None) => true,
            (Some((id, name)), Some(s)) => id == s.node_id && name == s.node_name,
            _ => false,
        };
        same_stamp && self.limits == *limits
    }
}

/// A series of an accepted request: where its payload starts in the request, and its
/// labels when they passed the common case's checks (`None`: the general path took it).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Known {
    pub(crate) at: usize,
    pub(crate) labels: Option<FastLabels>,
}

impl Template {
    /// The labels of series `index` and what the checks found, when they passed.
    #[inline]
    pub(crate) fn labels(&self, index: usize) -> Option<(&[u8], FastLabels)> {
        let known = self.series.get(index)?;
        let labels = known.labels?;
        Some((self.raw.get(known.at..known.at + labels.end)?, labels))
    }
}

impl Recall {
    /// The remembered request of this sender, under these limits, that `raw` repeats: the
    /// bytes up to the end of the labels of its first series whose labels passed are the
    /// same in `raw` (which of the sender's requests, when it sends several a round).
    pub(crate) fn find(
        &self,
        stamp: Option<NodeStamp<'_>>,
        limits: &Limits,
        raw: &[u8],
    ) -> Option<usize> {
        self.kept.iter().position(|t| {
            let end = t.series.iter().find_map(|s| s.labels.map(|l| s.at + l.end));
            t.who.is(stamp, limits) && end.is_some_and(|end| raw.get(..end) == t.raw.get(..end))
        })
    }

    pub(crate) fn get(&self, slot: usize) -> Option<&Template> {
        self.kept.get(slot)
    }

    /// Remembers the request just accepted: `raw` and `series` go into the template at
    /// `slot` (the one found for it), or into a new one, and come back holding the buffers
    /// they replace, for reuse.
    pub(crate) fn keep(
        &mut self,
        slot: Option<usize>,
        stamp: Option<NodeStamp<'_>>,
        limits: &Limits,
        raw: &mut Vec<u8>,
        series: &mut Vec<Known>,
    ) {
        self.clock += 1;
        if raw.len() > KEEP_REQUEST_BYTES || series.iter().all(|s| s.labels.is_none()) {
            return;
        }
        let slot = match slot {
            Some(slot) => slot,
            None => self.make_room(stamp, limits, raw.capacity()),
        };
        if let Some(t) = self.kept.get_mut(slot) {
            std::mem::swap(&mut t.raw, raw);
            std::mem::swap(&mut t.series, series);
            t.used = self.clock;
        }
    }

    /// A slot for a new template of this sender: an empty one, or the least recently used
    /// of the sender's own when it has [`PER_SENDER`] already; others are forgotten, least
    /// recently used first, until `bytes` more fit within [`KEEP_BYTES`].
    fn make_room(&mut self, stamp: Option<NodeStamp<'_>>, limits: &Limits, bytes: usize) -> usize {
        let own = |t: &Template| t.who.is(stamp, limits);
        if self.kept.iter().filter(|t| own(t)).count() >= PER_SENDER
            && let Some(oldest) = self.oldest(own)
        {
            return oldest;
        }
        while self.bytes() + bytes > KEEP_BYTES
            && let Some(oldest) = self.oldest(|_| true)
        {
            self.kept.swap_remove(oldest);
        }
        self.kept.push(Template {
            who: Who {
                stamp: stamp.map(|s| (s.node_id.to_owned(), s.node_name.to_owned())),
                limits: limits.clone(),
            },
            raw: Vec::new(),
            series: Vec::new(),
            used: 0,
        });
        self.kept.len() - 1
    }

    fn oldest(&self, of: impl Fn(&Template) -> bool) -> Option<usize> {
        self.kept
            .iter()
            .enumerate()
            .filter(|(_, t)| of(t))
            .min_by_key(|(_, t)| t.used)
            .map(|(i, _)| i)
    }

    /// Bytes held by the remembered requests.
    fn bytes(&self) -> usize {
        self.kept
            .iter()
            .map(|t| t.raw.capacity() + t.series.capacity() * size_of::<Known>())
            .sum()
    }

    /// Forgets everything.
    pub(crate) fn clear(&mut self) {
        self.kept.clear();
    }
}
