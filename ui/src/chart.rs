//! Server-side SVG charts for dashboards. [`render`] returns one self-contained HTML fragment
//! (a `<figure>` with an inline `<svg>` and an HTML legend) that reads without JavaScript and
//! carries no inline style or script, so the strict Content-Security-Policy holds. Colours come
//! from the classes `s0`..`s9` in `static/chart.css`; `static/chart.js` adds a hover guide and
//! tooltip from the figure's `data-*` attributes.

use std::fmt::Write as _;

use crate::units::{self, Unit};

/// The plot's `viewBox` width: the plot is stretched to the width of its panel (x only),
/// while the text around it keeps its size (11px at any width).
pub const WIDTH: u32 = 1000;
/// The chart's height in pixels, and the plot's `viewBox` height (y is not stretched).
pub const HEIGHT: u32 = 220;
/// The width, in pixels, of the column of y labels left of the plot.
const Y_LABELS_W: u32 = 64;

/// The plot area inside the plot's viewBox; the time labels sit below it.
const LEFT: f64 = 0.0;
const RIGHT: f64 = WIDTH as f64;
const TOP: f64 = 8.0;
const BOTTOM: f64 = 196.0;
/// Baseline of the time labels.
const X_LABEL_Y: f64 = 212.0;
/// How many colour classes `chart.css` defines (`s0`..`s9`).
const COLOURS: usize = 10;

/// One line (or stacked area) of a chart.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    pub label: String,
    /// Unix seconds and value; `None` is no sample (a gap). Points outside the chart's range
    /// are left out, NaN and infinities are gaps.
    pub points: Vec<(i64, Option<f64>)>,
}

/// How the series are drawn.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// One line per series.
    Line,
    /// Filled areas, each series on the sum of those before it at the same timestamp.
    Stacked,
}

/// What a chart shows: its title, unit, kind and time range.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub title: String,
    pub unit: Unit,
    pub kind: Kind,
    /// The time range in unix seconds, both ends included.
    pub start: i64,
    pub end: i64,
    /// Seconds between samples: points further apart than 1.5 steps are not joined.
    /// 0 or less joins every pair of neighbouring samples.
    pub step: i64,
    /// Forces the bottom of the y axis (else 0, or lower for negative data).
    pub y_min: Option<f64>,
    /// Forces the top of the y axis (e.g. 100 for percent), else a nice value ≥ the data.
    pub y_max: Option<f64>,
}

/// The chart as an HTML fragment: `<figure class="chart">` holding a title, a column of y
/// labels and the chart (inline SVGs, the plot in `viewBox="0 0 1000 220"` stretched to the
/// panel's width, the text at a constant size) and a legend table with each series' min, mean, max and last. With no data the
/// frame shows "No data". Hover data for `chart.js` is on the figure: `data-start`,
/// `data-end`, `data-step`, `data-unit`, `data-plot` (the plot area's left, top, right and
/// bottom in the plot's viewBox units) and `data-series`, JSON
/// `{"t":[unix seconds...],"s":[{"l":"label","v":[1.5,null,...]}],"u":"bytes"}`.
pub fn render(spec: &Spec, series: &[Series]) -> String {
    let (start, end) = time_range(spec, series);
    let prepared: Vec<Vec<(i64, Option<f64>)>> = series
        .iter()
        .map(|s| prepare(&s.points, start, end))
        .collect();
    let has_data = prepared.iter().any(|p| p.iter().any(|(_, v)| v.is_some()));

    // Every timestamp of any series, and each series' values on it.
    let mut times: Vec<i64> = prepared.iter().flatten().map(|p| p.0).collect();
    times.sort_unstable();
    times.dedup();
    let aligned: Vec<Vec<Option<f64>>> = prepared.iter().map(|p| align(p, &times)).collect();
    let stacks = (spec.kind == Kind::Stacked).then(|| stack(&aligned));

    let (mut dmin, mut dmax) = (f64::INFINITY, f64::NEG_INFINITY);
    let mut see = |v: f64| {
        dmin = dmin.min(v);
        dmax = dmax.max(v);
    };
    match &stacks {
        Some(stacks) => stacks.iter().flatten().flatten().for_each(|&(lo, hi)| {
            see(lo);
            see(hi);
        }),
        None => prepared.iter().flatten().filter_map(|p| p.1).for_each(see),
    }
    let axis = has_data.then(|| y_axis(dmin, dmax, spec.y_min, spec.y_max, spec.unit));
    let frame = Frame {
        start,
        end,
        lo: axis.as_ref().map_or(0.0, |a| a.lo),
        hi: axis.as_ref().map_or(1.0, |a| a.hi),
    };

    let points: usize = prepared.iter().map(Vec::len).sum();
    let mut o = String::with_capacity(2048 + points * 24);
    o.push_str("<figure class=\"chart\"");
    if has_data {
        let _ = write!(
            o,
            " data-start=\"{start}\" data-end=\"{end}\" data-step=\"{}\" data-unit=\"{}\" \
             data-plot=\"{LEFT} {TOP} {RIGHT} {BOTTOM}\" data-series=\"",
            spec.step.max(0),
            spec.unit.as_str()
        );
        let json = series_json(spec.unit, series, &times, &aligned);
        escape_into(&mut o, &json);
        o.push('"');
    }
    o.push('>');
    if !spec.title.is_empty() {
        o.push_str("<figcaption class=\"chart-title\">");
        escape_into(&mut o, &spec.title);
        o.push_str("</figcaption>");
    }
    // The y labels in a column of their own, then the chart: labels in pixels and
    // percentages (their size never changes), the plot in a viewBox stretched to fit.
    o.push_str("<div class=\"chart-body\">");
    let _ = write!(
        o,
        "<svg class=\"y-labels\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{Y_LABELS_W}\" \
         height=\"{HEIGHT}\" aria-hidden=\"true\">"
    );
    if let Some(axis) = &axis {
        o.push_str("<g class=\"axis y-axis\" text-anchor=\"end\">");
        for &v in &axis.ticks {
            let _ = write!(o, "<text x=\"{}\" y=\"", Y_LABELS_W - 6);
            push_tenths(&mut o, tenths(frame.y(v) + 3.5));
            o.push_str("\">");
            escape_into(&mut o, &units::format(v, spec.unit));
            o.push_str("</text>");
        }
        o.push_str("</g>");
    }
    o.push_str("</svg>");
    let _ = write!(
        o,
        "<svg class=\"chart-area\" xmlns=\"http://www.w3.org/2000/svg\" height=\"{HEIGHT}\" \
         role=\"img\" aria-label=\""
    );
    escape_into(
        &mut o,
        if spec.title.is_empty() {
            "Chart"
        } else {
            &spec.title
        },
    );
    o.push_str("\">");

    let _ = write!(
        o,
        "<svg class=\"plot\" x=\"0\" y=\"0\" width=\"100%\" height=\"{HEIGHT}\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" preserveAspectRatio=\"none\">"
    );
    // Grid and axes.
    let xt = x_ticks(start, end);
    let mut grid = String::new();
    if let Some(axis) = &axis {
        for &v in &axis.ticks {
            grid.push('M');
            push_tenths(&mut grid, tenths(LEFT));
            grid.push(',');
            push_tenths(&mut grid, tenths(frame.y(v)));
            grid.push('H');
            push_tenths(&mut grid, tenths(RIGHT));
        }
    }
    for &t in &xt.ticks {
        grid.push('M');
        push_tenths(&mut grid, tenths(frame.x(t)));
        grid.push(',');
        push_tenths(&mut grid, tenths(TOP));
        grid.push('V');
        push_tenths(&mut grid, tenths(BOTTOM));
    }
    if !grid.is_empty() {
        let _ = write!(o, "<path class=\"grid\" d=\"{grid}\"/>");
    }
    let _ = write!(
        o,
        "<path class=\"axis-line\" d=\"M{LEFT},{BOTTOM}H{RIGHT}\"/>"
    );
    if has_data {
        draw_series(&mut o, spec, &frame, &prepared, &times, stacks.as_deref());
    } else {
        let _ = write!(
            o,
            "<rect class=\"frame\" x=\"{LEFT}\" y=\"{TOP}\" width=\"{}\" height=\"{}\"/>",
            RIGHT - LEFT,
            BOTTOM - TOP,
        );
    }
    o.push_str("</svg>");
    // The time labels, at a share of the width: the first and last kept inside.
    if !xt.ticks.is_empty() {
        o.push_str("<g class=\"axis x-axis\">");
        for &t in &xt.ticks {
            let share = (frame.x(t) - LEFT) / (RIGHT - LEFT) * 100.0;
            let anchor = if share < 6.0 {
                "start"
            } else if share > 94.0 {
                "end"
            } else {
                "middle"
            };
            o.push_str("<text x=\"");
            push_tenths(&mut o, tenths(share));
            let _ = write!(
                o,
                "%\" y=\"{X_LABEL_Y}\" text-anchor=\"{anchor}\">{}</text>",
                time_label(t, xt.format)
            );
        }
        o.push_str("</g>");
    }
    if !has_data {
        let _ = write!(
            o,
            "<text class=\"nodata\" x=\"50%\" y=\"{}\" text-anchor=\"middle\">No data</text>",
            (TOP + BOTTOM) / 2.0 + 5.0
        );
    }
    o.push_str("</svg></div>");

    if !series.is_empty() {
        // As Grafana's legend table: each series' min, mean, max and last over the range.
        o.push_str(
            "<table class=\"legend\"><thead><tr><th></th><th>min</th><th>mean</th>\
             <th>max</th><th>last</th></tr></thead><tbody>",
        );
        for (i, p) in prepared.iter().enumerate() {
            let values: Vec<f64> = p.iter().filter_map(|p| p.1).collect();
            let stats = (!values.is_empty()).then(|| {
                let min = values.iter().copied().fold(f64::INFINITY, f64::min);
                let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let mean = values.iter().sum::<f64>() / values.len() as f64;
                [min, mean, max, values[values.len() - 1]]
            });
            let _ = write!(
                o,
                "<tr><td><span class=\"swatch s{}\" aria-hidden=\"true\"></span>\
                 <span class=\"label\">",
                i % COLOURS
            );
            escape_into(&mut o, &series[i].label);
            o.push_str("</span></td>");
            for k in 0..4 {
                o.push_str("<td class=\"value\">");
                let value = stats.map_or_else(
                    || units::MISSING.to_owned(),
                    |st| units::format(st[k], spec.unit),
                );
                escape_into(&mut o, &value);
                o.push_str("</td>");
            }
            o.push_str("</tr>");
        }
        o.push_str("</tbody></table>");
    }
    o.push_str("</figure>");
    o
}

/// The range to draw: the spec's, or the data's when the spec's is empty or inverted.
fn time_range(spec: &Spec, series: &[Series]) -> (i64, i64) {
    if spec.end > spec.start {
        return (spec.start, spec.end);
    }
    let ts = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let (lo, hi) = ts.fold((i64::MAX, i64::MIN), |(lo, hi), t| (lo.min(t), hi.max(t)));
    if lo < hi {
        (lo, hi)
    } else {
        let start = if lo == i64::MAX { spec.start } else { lo };
        (start, start.saturating_add(spec.step.max(60)))
    }
}

/// The points inside `start..=end`, sorted by time, one per timestamp, non-finite values as gaps.
fn prepare(points: &[(i64, Option<f64>)], start: i64, end: i64) -> Vec<(i64, Option<f64>)> {
    let mut out: Vec<(i64, Option<f64>)> = points
        .iter()
        .filter(|p| p.0 >= start && p.0 <= end)
        .map(|&(t, v)| (t, v.filter(|v| v.is_finite())))
        .collect();
    if !out.is_sorted_by_key(|p| p.0) {
        out.sort_by_key(|p| p.0);
    }
    out.dedup_by_key(|p| p.0);
    out
}

/// A series' values on the shared timeline `times` (which holds every one of its timestamps).
fn align(points: &[(i64, Option<f64>)], times: &[i64]) -> Vec<Option<f64>> {
    let mut out = vec![None; times.len()];
    let mut j = 0;
    for &(t, v) in points {
        while j < times.len() && times[j] < t {
            j += 1;
        }
        if let Some(slot) = out.get_mut(j) {
            *slot = v;
        }
    }
    out
}

/// One stacked series' (bottom, top) at each timestamp of the timeline; `None` is a gap.
type Stack = Vec<Option<(f64, f64)>>;

/// Each series' (bottom, top) on the timeline: stacked on the sum of those before it.
fn stack(aligned: &[Vec<Option<f64>>]) -> Vec<Stack> {
    let mut base = vec![0.0; aligned.first().map_or(0, Vec::len)];
    aligned
        .iter()
        .map(|values| {
            values
                .iter()
                .zip(base.iter_mut())
                .map(|(v, b)| {
                    v.map(|v| {
                        let lo = *b;
                        *b += v;
                        (lo, *b)
                    })
                })
                .collect()
        })
        .collect()
}

/// Maps time and value to viewBox coordinates.
#[derive(Debug, Clone, Copy)]
struct Frame {
    start: i64,
    end: i64,
    lo: f64,
    hi: f64,
}

impl Frame {
    fn x(&self, t: i64) -> f64 {
        let span = (self.end as f64 - self.start as f64).max(1.0);
        LEFT + (t as f64 - self.start as f64) / span * (RIGHT - LEFT)
    }

    /// Values outside the axis are drawn at its edge.
    fn y(&self, v: f64) -> f64 {
        let y = BOTTOM - (v - self.lo) / (self.hi - self.lo) * (BOTTOM - TOP);
        y.clamp(TOP, BOTTOM)
    }
}

/// True when samples `dt` seconds apart are not neighbours (a missing step lies between).
fn is_gap(dt: i64, step: i64) -> bool {
    step > 0 && dt.saturating_mul(2) > step.saturating_mul(3)
}

/// Calls `f` with each run of present, neighbouring samples.
fn for_each_run<T: Copy>(
    points: impl Iterator<Item = (i64, Option<T>)>,
    step: i64,
    buf: &mut Vec<(i64, T)>,
    mut f: impl FnMut(&[(i64, T)]),
) {
    buf.clear();
    for (t, v) in points {
        let broken = match (v, buf.last()) {
            (None, _) => true,
            (Some(_), Some(&(prev, _))) => is_gap(t - prev, step),
            (Some(_), None) => false,
        };
        if broken && !buf.is_empty() {
            f(buf);
            buf.clear();
        }
        if let Some(v) = v {
            buf.push((t, v));
        }
    }
    if !buf.is_empty() {
        f(buf);
    }
}

/// The lines (and for stacked charts the areas under them) of every series.
fn draw_series(
    o: &mut String,
    spec: &Spec,
    frame: &Frame,
    prepared: &[Vec<(i64, Option<f64>)>],
    times: &[i64],
    stacks: Option<&[Stack]>,
) {
    let mut run_buf = Vec::new();
    let mut stack_buf = Vec::new();
    let mut xy = Vec::new();
    let mut reduced = Vec::new();
    let mut bottom = Vec::new();
    let mut d = String::new();
    let mut lines = String::new();
    o.push_str("<g class=\"plot\">");
    for (i, points) in prepared.iter().enumerate() {
        let class = i % COLOURS;
        d.clear();
        match stacks {
            None => for_each_run(points.iter().copied(), spec.step, &mut run_buf, |run| {
                xy.clear();
                xy.extend(run.iter().map(|&(t, v)| (frame.x(t), frame.y(v))));
                decimate(&xy, &mut reduced);
                write_run(&mut d, reduced.iter().copied(), false);
            }),
            Some(stacks) => {
                let mut area = String::new();
                let points = times.iter().copied().zip(stacks[i].iter().copied());
                for_each_run(points, spec.step, &mut stack_buf, |run| {
                    xy.clear();
                    xy.extend(run.iter().map(|&(t, (_, hi))| (frame.x(t), frame.y(hi))));
                    decimate(&xy, &mut reduced);
                    write_run(&mut d, reduced.iter().copied(), false);
                    // The area: along the top, then back along the bottom.
                    let top_len = reduced.len();
                    xy.clear();
                    xy.extend(run.iter().map(|&(t, (lo, _))| (frame.x(t), frame.y(lo))));
                    decimate(&xy, &mut bottom);
                    let outline = reduced[..top_len]
                        .iter()
                        .copied()
                        .chain(bottom.iter().rev().copied());
                    write_run(&mut area, outline, true);
                });
                if !area.is_empty() {
                    let _ = write!(o, "<path class=\"area s{class}\" d=\"{area}\"/>");
                }
            }
        }
        if !d.is_empty() {
            let _ = write!(lines, "<path class=\"line s{class}\" d=\"{d}\"/>");
        }
    }
    // Lines after every area, so that no area covers a line.
    o.push_str(&lines);
    o.push_str("</g>");
}

/// Keeps, per half-pixel column, only the first, lowest, highest and last point, so a series
/// with far more samples than pixels draws the same shape from less path data.
fn decimate(points: &[(f64, f64)], out: &mut Vec<(f64, f64)>) {
    out.clear();
    let col = |p: &(f64, f64)| (p.0 * 2.0).floor();
    let mut i = 0;
    while i < points.len() {
        let c = col(&points[i]);
        let (mut lo, mut hi, mut j) = (i, i, i);
        while j < points.len() && col(&points[j]) == c {
            if points[j].1 < points[lo].1 {
                lo = j;
            }
            if points[j].1 > points[hi].1 {
                hi = j;
            }
            j += 1;
        }
        let mut keep = [i, lo, hi, j - 1];
        keep.sort_unstable();
        let mut prev = usize::MAX;
        for k in keep {
            if k != prev {
                out.push(points[k]);
                prev = k;
            }
        }
        i = j;
    }
}

/// Appends one subpath (`M x,y L x,y x,y ...`), skipping points that round to the previous
/// one; `close` ends it with `Z`, else a lone point becomes a dot (`h0`, round caps).
fn write_run(d: &mut String, points: impl Iterator<Item = (f64, f64)>, close: bool) {
    let mut last = None;
    let mut n = 0;
    for (x, y) in points {
        let p = (tenths(x), tenths(y));
        if last == Some(p) {
            continue;
        }
        d.push(match n {
            0 => 'M',
            1 => 'L',
            _ => ' ',
        });
        push_tenths(d, p.0);
        d.push(',');
        push_tenths(d, p.1);
        last = Some(p);
        n += 1;
    }
    if n > 0 {
        if close {
            d.push('Z');
        } else if n == 1 {
            d.push_str("h0");
        }
    }
}

/// A coordinate in tenths, rounded.
fn tenths(v: f64) -> i64 {
    (v * 10.0).round() as i64
}

/// Writes tenths as a decimal with at most one fraction digit: `196`, `70.5`, `-3.2`.
fn push_tenths(out: &mut String, t: i64) {
    if t < 0 {
        out.push('-');
    }
    let a = t.unsigned_abs();
    push_uint(out, a / 10);
    if !a.is_multiple_of(10) {
        out.push('.');
        out.push(char::from(b'0' + (a % 10) as u8));
    }
}

/// Writes an integer in decimal, without the formatting machinery (charts write thousands).
fn push_int(out: &mut String, n: i64) {
    if n < 0 {
        out.push('-');
    }
    push_uint(out, n.unsigned_abs());
}

fn push_uint(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend(digits[i..].iter().map(|&d| char::from(d)));
}

/// The y axis: its bottom and top values and the ticks (labelled values) between.
#[derive(Debug, Clone, PartialEq)]
struct YAxis {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

/// A y axis from 0 (or lower for negative data, or `y_min`) to a nice value ≥ the data (or
/// `y_max`), with 4–6 ticks at 1, 2, 2.5 or 5 × 10ⁿ (bytes in 1024ⁿ, seconds in min/h/d).
fn y_axis(dmin: f64, dmax: f64, y_min: Option<f64>, y_max: Option<f64>, unit: Unit) -> YAxis {
    let y_min = y_min.filter(|v| v.is_finite());
    let y_max = y_max.filter(|v| v.is_finite() && y_min.is_none_or(|lo| *v > lo));
    let (dmin, dmax) = if dmin <= dmax {
        (dmin, dmax)
    } else {
        (0.0, 0.0)
    };
    let lo = y_min.unwrap_or(dmin.min(0.0));
    let mut hi = y_max.unwrap_or(dmax.max(lo));
    if hi <= lo {
        hi = if lo == 0.0 { 1.0 } else { lo + lo.abs() };
    }
    let scale = unit_scale(unit, lo.abs().max(hi.abs()));
    let step = nice_step(lo / scale, hi / scale) * scale;
    let lo = y_min.unwrap_or_else(|| ((lo / step) + 1e-9).floor() * step);
    let hi = y_max.unwrap_or_else(|| ((hi / step) - 1e-9).ceil() * step);
    let first = ((lo / step) - 1e-9).ceil() as i64;
    let last = ((hi / step) + 1e-9).floor() as i64;
    let ticks = (first..=last)
        .map(|k| {
            let v = k as f64 * step;
            if v.abs() < step * 1e-9 { 0.0 } else { v }
        })
        .collect();
    YAxis { lo, hi, ticks }
}

/// The factor ticks are chosen in: whole KiB/MiB/GiB for bytes, min/h/d for seconds.
fn unit_scale(unit: Unit, max_abs: f64) -> f64 {
    match unit {
        Unit::Bytes | Unit::BytesPerSecond if max_abs >= 1024.0 => {
            let k = (max_abs.log2() / 10.0).floor().min(5.0);
            2f64.powf(10.0 * k)
        }
        Unit::Seconds if max_abs >= 86400.0 => 86400.0,
        Unit::Seconds if max_abs >= 3600.0 => 3600.0,
        Unit::Seconds if max_abs >= 60.0 => 60.0,
        _ => 1.0,
    }
}

/// The smallest of 1, 2, 2.5, 5 × 10ⁿ giving 3–5 intervals over `lo..hi` (`hi > lo`).
fn nice_step(lo: f64, hi: f64) -> f64 {
    let raw = (hi - lo) / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let mut fallback = None;
    for m in [1.0, 2.0, 2.5, 5.0, 10.0, 20.0, 25.0, 50.0, 100.0] {
        let step = m * mag;
        let n = ((hi / step) - 1e-9).ceil() - ((lo / step) + 1e-9).floor();
        if n <= 5.0 {
            if n >= 3.0 {
                return step;
            }
            fallback.get_or_insert(step);
        }
    }
    fallback.unwrap_or(100.0 * mag)
}

/// How time labels are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeFormat {
    /// `HH:MM:SS`
    Seconds,
    /// `HH:MM`
    Minutes,
    /// `MM-DD HH:MM`
    DayMinutes,
    /// `MM-DD`
    Day,
}

#[derive(Debug, Clone, PartialEq)]
struct XTicks {
    ticks: Vec<i64>,
    format: TimeFormat,
}

const TIME_STEPS: [i64; 23] = [
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
    172_800, 604_800, 1_209_600, 2_592_000, 7_776_000,
];

/// Time ticks at a nice step (at most 6 intervals, 4 for `MM-DD HH:MM`), on multiples of
/// it in UTC.
fn x_ticks(start: i64, end: i64) -> XTicks {
    let range = end.saturating_sub(start).max(1);
    // Long labels (`MM-DD HH:MM`) get at most 4 intervals, short ones 6.
    let fits = |s: i64| {
        range / s
            <= if range > 86400 && s % 86400 != 0 {
                4
            } else {
                6
            }
    };
    let step = TIME_STEPS
        .iter()
        .copied()
        .find(|s| fits(*s))
        .unwrap_or_else(|| (range / 6 / 86400 + 1) * 86400);
    let format = if range <= 86400 {
        if step < 60 {
            TimeFormat::Seconds
        } else {
            TimeFormat::Minutes
        }
    } else if step % 86400 == 0 {
        TimeFormat::Day
    } else {
        TimeFormat::DayMinutes
    };
    let first = start.div_euclid(step) + i64::from(start.rem_euclid(step) != 0);
    let ticks = (first..)
        .map(|k| k * step)
        .take_while(|t| *t <= end)
        .collect();
    XTicks { ticks, format }
}

fn time_label(t: i64, format: TimeFormat) -> String {
    let (_, month, day) = civil_from_days(t.div_euclid(86400));
    let secs = t.rem_euclid(86400);
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    match format {
        TimeFormat::Seconds => format!("{h:02}:{m:02}:{s:02}"),
        TimeFormat::Minutes => format!("{h:02}:{m:02}"),
        TimeFormat::DayMinutes => format!("{month:02}-{day:02} {h:02}:{m:02}"),
        TimeFormat::Day => format!("{month:02}-{day:02}"),
    }
}

/// The proleptic Gregorian (year, month, day) of a count of days since 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `{"t":[...],"s":[{"l":"label","v":[...]}],"u":"unit"}`, numbers to 6 significant digits.
fn series_json(
    unit: Unit,
    series: &[Series],
    times: &[i64],
    aligned: &[Vec<Option<f64>>],
) -> String {
    let values: usize = aligned.iter().map(Vec::len).sum();
    let mut j = String::with_capacity(64 + times.len() * 11 + values * 8);
    j.push_str("{\"t\":[");
    for (i, t) in times.iter().enumerate() {
        if i > 0 {
            j.push(',');
        }
        push_int(&mut j, *t);
    }
    j.push_str("],\"s\":[");
    for (i, (s, values)) in series.iter().zip(aligned).enumerate() {
        if i > 0 {
            j.push(',');
        }
        j.push_str("{\"l\":");
        json_string(&mut j, &s.label);
        j.push_str(",\"v\":[");
        for (k, v) in values.iter().enumerate() {
            if k > 0 {
                j.push(',');
            }
            match v {
                Some(v) => json_number(&mut j, *v),
                None => j.push_str("null"),
            }
        }
        j.push_str("]}");
    }
    j.push_str("],\"u\":");
    json_string(&mut j, unit.as_str());
    j.push('}');
    j
}

fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A finite number with up to 6 significant digits (`null` otherwise): `1.5`, `0.000123`,
/// `123457`, `1.23457e9`. Rounds, then prints the shortest form (fast; no exact-precision
/// formatting): the quotient of an integer and a power of ten is the double nearest the
/// rounded decimal, so it prints as that decimal.
fn json_number(out: &mut String, v: f64) {
    if !v.is_finite() {
        out.push_str("null");
        return;
    }
    let mag = if v == 0.0 {
        0
    } else {
        v.abs().log10().floor() as i32
    };
    if (-4..=5).contains(&mag) {
        let p = 10f64.powi(5 - mag);
        let r = (v * p).round() / p;
        let _ = write!(out, "{}", if r == 0.0 { 0.0 } else { r });
    } else {
        let mut m = (v / 10f64.powi(mag) * 1e5).round() / 1e5;
        let mut e = mag;
        if m.abs() >= 10.0 {
            m /= 10.0;
            e += 1;
        }
        if m.is_finite() {
            let _ = write!(out, "{m}e{e}");
        } else {
            out.push('0'); // subnormal
        }
    }
}

/// Escapes text for HTML or SVG content and attribute values.
fn escape_into(out: &mut String, s: &str) {
    let mut rest = s;
    while let Some(i) = rest.find(['&', '<', '>', '"', '\'']) {
        out.push_str(&rest[..i]);
        out.push_str(match rest.as_bytes()[i] {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            _ => "&#39;",
        });
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
}

/// A small load chart (a sparkline) of `values`, one a step, scaled to their own peak: an
/// inline `<svg class="spark">` whose line breaks at gaps (`None`). Empty without data.
pub fn sparkline(values: &[Option<f64>]) -> String {
    const W: f64 = 120.0;
    const H: f64 = 24.0;
    let peak = values
        .iter()
        .flatten()
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max);
    if values.is_empty() || peak <= 0.0 {
        return String::new();
    }
    let dx = if values.len() > 1 {
        W / (values.len() - 1) as f64
    } else {
        0.0
    };
    let mut d = String::new();
    let mut pen_down = false;
    for (i, v) in values.iter().enumerate() {
        match v.filter(|v| v.is_finite()) {
            Some(v) => {
                let x = i as f64 * dx;
                let y = H - 1.0 - (v.max(0.0) / peak) * (H - 2.0);
                let _ = write!(d, "{}{x:.1},{y:.1}", if pen_down { " L" } else { " M" });
                pen_down = true;
            }
            None => pen_down = false,
        }
    }
    format!(
        "<svg class=\"spark\" viewBox=\"0 0 {W} {H}\" preserveAspectRatio=\"none\" role=\"img\" aria-label=\"load over the range\"><path d=\"{}\"/></svg>",
        d.trim_start()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2023-11-14 22:00:00 UTC.
    const T0: i64 = 1_699_999_200;

    fn spec(kind: Kind, unit: Unit, start: i64, end: i64, step: i64) -> Spec {
        Spec {
            title: "Test chart".into(),
            unit,
            kind,
            start,
            end,
            step,
            y_min: None,
            y_max: None,
        }
    }

    fn series(label: &str, points: &[(i64, Option<f64>)]) -> Series {
        Series {
            label: label.into(),
            points: points.to_vec(),
        }
    }

    /// The `d` of the path with this class.
    fn path_d<'a>(html: &'a str, class: &str) -> &'a str {
        let key = format!("class=\"{class}\" d=\"");
        let at = html
            .find(&key)
            .unwrap_or_else(|| panic!("no {class} in {html}"))
            + key.len();
        let len = html[at..].find('"').unwrap();
        &html[at..at + len]
    }

    #[test]
    fn nice_y_ticks() {
        let a = y_axis(0.0, 7.0, None, None, Unit::None);
        assert_eq!(a.ticks, [0.0, 2.0, 4.0, 6.0, 8.0]);
        assert_eq!((a.lo, a.hi), (0.0, 8.0));
        let a = y_axis(3.0, 12.0, None, None, Unit::None);
        assert_eq!(a.ticks, [0.0, 2.5, 5.0, 7.5, 10.0, 12.5]);
        let a = y_axis(0.0, 42.0, None, Some(100.0), Unit::Percent);
        assert_eq!(a.ticks, [0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        assert_eq!(a.hi, 100.0);
        let a = y_axis(0.0, 0.7, None, None, Unit::PercentUnit);
        assert_eq!(a.ticks.len(), 5);
        assert!((a.hi - 0.8).abs() < 1e-12);
        let a = y_axis(-3.0, 9.0, None, None, Unit::Count);
        assert_eq!(a.ticks, [-5.0, 0.0, 5.0, 10.0]);
        let gib = 1024.0 * 1024.0 * 1024.0;
        let a = y_axis(0.0, 3.5 * gib, None, None, Unit::Bytes);
        let labels: Vec<String> = a
            .ticks
            .iter()
            .map(|v| units::format(*v, Unit::Bytes))
            .collect();
        assert_eq!(labels, ["0 B", "1 GiB", "2 GiB", "3 GiB", "4 GiB"]);
        let a = y_axis(0.0, 3000.0, None, None, Unit::Seconds);
        let labels: Vec<String> = a
            .ticks
            .iter()
            .map(|v| units::format(*v, Unit::Seconds))
            .collect();
        assert_eq!(
            labels,
            ["0 s", "10 min", "20 min", "30 min", "40 min", "50 min"]
        );
        // Flat zero data still gets an axis.
        let a = y_axis(0.0, 0.0, None, None, Unit::None);
        assert_eq!((a.lo, a.hi, a.ticks.len()), (0.0, 1.0, 6));
        for (lo, hi) in [
            (0.0, 1.0),
            (0.0, 13.0),
            (0.0, 999.0),
            (5.0, 6.0),
            (-1e6, 3e6),
            (0.0, 0.003),
        ] {
            let a = y_axis(lo, hi, None, None, Unit::None);
            assert!((4..=6).contains(&a.ticks.len()), "{lo}..{hi}: {a:?}");
            assert!(a.hi >= hi && a.lo <= lo.min(0.0), "{lo}..{hi}: {a:?}");
        }
    }

    #[test]
    fn gaps_break_the_line() {
        let s = spec(Kind::Line, Unit::None, 0, 240, 60);
        let missing = [
            (0, Some(1.0)),
            (60, Some(2.0)),
            (120, None),
            (180, Some(3.0)),
            (240, Some(4.0)),
        ];
        let html = render(&s, &[series("a", &missing)]);
        assert_eq!(path_d(&html, "line s0").matches('M').count(), 2, "{html}");
        // A missing step breaks it too.
        let skipped = [
            (0, Some(1.0)),
            (60, Some(2.0)),
            (180, Some(3.0)),
            (240, Some(4.0)),
        ];
        let html = render(&s, &[series("a", &skipped)]);
        assert_eq!(path_d(&html, "line s0").matches('M').count(), 2);
        // Neighbouring samples are joined.
        let whole = [
            (0, Some(1.0)),
            (60, Some(2.0)),
            (120, Some(2.0)),
            (180, Some(3.0)),
        ];
        let html = render(&s, &[series("a", &whole)]);
        assert_eq!(path_d(&html, "line s0").matches('M').count(), 1);
        // A lone sample is a dot.
        let lone = [(0, Some(1.0)), (60, None), (120, Some(2.0)), (180, None)];
        let html = render(&s, &[series("a", &lone)]);
        assert!(path_d(&html, "line s0").ends_with("h0"));
    }

    #[test]
    fn stacked_series_add_up() {
        let s = spec(Kind::Stacked, Unit::None, 0, 240, 60);
        let a: Vec<_> = (0..5).map(|i| (i * 60, Some(10.0))).collect();
        let b: Vec<_> = (0..5).map(|i| (i * 60, Some(20.0))).collect();
        let html = render(&s, &[series("a", &a), series("b", &b)]);
        // The axis runs 0..30: b's top (10 + 20) is the top of the plot, a's is a third up.
        assert!(path_d(&html, "line s1").starts_with("M0,8L"), "{html}");
        assert!(path_d(&html, "line s0").starts_with("M0,133.3L"), "{html}");
        let area = path_d(&html, "area s1");
        assert!(area.starts_with("M0,8L") && area.contains("1000,133.3") && area.ends_with('Z'));
        assert!(path_d(&html, "area s0").contains("0,196"));
        // Areas come before every line.
        assert!(html.rfind("class=\"area").unwrap() < html.find("class=\"line").unwrap());
    }

    #[test]
    fn labels_and_titles_are_escaped() {
        let mut s = spec(Kind::Line, Unit::Bytes, 0, 120, 60);
        s.title = "Disk \"/\" & <b>".into();
        let bad = "<script>alert('x')</script>";
        let html = render(&s, &[series(bad, &[(0, Some(1.0)), (60, Some(2.0))])]);
        assert!(
            html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"),
            "{html}"
        );
        assert!(html.contains("Disk &quot;/&quot; &amp; &lt;b&gt;"));
        assert!(!html.contains("<script") && !html.contains("<b>"));
        assert!(!html.contains("style="));
        // The label inside the JSON attribute is escaped twice over: JSON, then HTML.
        assert!(html.contains("{&quot;l&quot;:&quot;&lt;script&gt;alert(&#39;x&#39;)"));
    }

    #[test]
    fn no_style_or_script() {
        for kind in [Kind::Line, Kind::Stacked] {
            let s = spec(kind, Unit::Percent, T0, T0 + 3600, 60);
            let pts: Vec<_> = (0..=60)
                .map(|i| (T0 + i * 60, Some((i % 7) as f64)))
                .collect();
            let html = render(&s, &[series("a", &pts), series("b", &pts)]);
            assert!(
                !html.contains("style=") && !html.contains("<script"),
                "{html}"
            );
            assert!(html.starts_with("<figure class=\"chart\"") && html.ends_with("</figure>"));
            assert!(html.contains("viewBox=\"0 0 1000 220\" preserveAspectRatio=\"none\""));
            assert!(html.contains("<tbody><tr><td><span class=\"swatch s0\""));
        }
    }

    #[test]
    fn no_data() {
        let s = spec(Kind::Line, Unit::Bytes, 0, 3600, 60);
        let html = render(&s, &[]);
        assert!(html.contains(">No data</text>"), "{html}");
        assert!(!html.contains("data-series") && !html.contains("legend"));
        let html = render(&s, &[series("idle", &[(0, None), (60, Some(f64::NAN))])]);
        assert!(html.contains(">No data</text>"));
        assert!(html.contains("<span class=\"label\">idle</span></td><td class=\"value\">—</td>"));
        for kind in [Kind::Line, Kind::Stacked] {
            let empty = Spec {
                kind,
                end: 0,
                ..s.clone()
            };
            assert!(render(&empty, &[series("x", &[])]).contains("No data"));
        }
    }

    #[test]
    fn time_labels() {
        let x = x_ticks(T0, T0 + 3600);
        let labels: Vec<String> = x.ticks.iter().map(|t| time_label(*t, x.format)).collect();
        assert_eq!(
            labels,
            [
                "22:00", "22:10", "22:20", "22:30", "22:40", "22:50", "23:00"
            ]
        );
        let x = x_ticks(T0, T0 + 7 * 86400);
        let labels: Vec<String> = x.ticks.iter().map(|t| time_label(*t, x.format)).collect();
        assert_eq!(labels, ["11-15", "11-17", "11-19", "11-21"]);
        let x = x_ticks(T0, T0 + 2 * 86400);
        let labels: Vec<String> = x.ticks.iter().map(|t| time_label(*t, x.format)).collect();
        assert_eq!(
            labels,
            ["11-15 00:00", "11-15 12:00", "11-16 00:00", "11-16 12:00"]
        );
        let x = x_ticks(T0, T0 + 3 * 86400);
        assert_eq!(x.format, TimeFormat::Day);
        let x = x_ticks(T0 + 7, T0 + 127);
        assert_eq!(time_label(x.ticks[0], x.format), "22:00:30");

        let s = spec(Kind::Line, Unit::None, T0, T0 + 3600, 60);
        let html = render(&s, &[series("a", &[(T0, Some(1.0)), (T0 + 60, Some(2.0))])]);
        assert!(
            html.contains(">22:10</text>") && html.contains(">23:00</text>"),
            "{html}"
        );
        let s = spec(Kind::Line, Unit::None, T0, T0 + 7 * 86400, 3600);
        let html = render(&s, &[series("a", &[(T0, Some(1.0))])]);
        assert!(
            html.contains(">11-17</text>") && !html.contains(">22:"),
            "{html}"
        );
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(19_675), (2023, 11, 14));
        assert_eq!(civil_from_days(20_513), (2026, 3, 1));
    }

    #[test]
    fn series_json_on_the_figure() {
        let s = spec(Kind::Line, Unit::Bytes, 0, 180, 60);
        let a = [(0, Some(1.5)), (60, None), (120, Some(1234567.0))];
        let b = [(60, Some(0.000123456)), (180, Some(-2.0))];
        let html = render(&s, &[series("a\"b", &a), series("c", &b)]);
        let at = html.find("data-series=\"").unwrap() + "data-series=\"".len();
        let attr = &html[at..at + html[at..].find('"').unwrap()];
        let json = attr
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&");
        assert_eq!(
            json,
            r#"{"t":[0,60,120,180],"s":[{"l":"a\"b","v":[1.5,null,1.23457e6,null]},{"l":"c","v":[null,0.000123456,null,-2]}],"u":"bytes"}"#
        );
        assert!(
            html.contains("data-start=\"0\" data-end=\"180\" data-step=\"60\" data-unit=\"bytes\"")
        );
        assert!(html.contains("data-plot=\"0 8 1000 196\""));
    }

    #[test]
    fn json_numbers() {
        let mut out = String::new();
        for v in [
            0.0,
            1.0,
            -2.5,
            123456.0,
            1234567.0,
            0.1 + 0.2,
            1e-7,
            99.99999,
            -0.0000001,
            9.999999e8,
            -1e-300,
            5e-324,
            f64::NAN,
        ] {
            json_number(&mut out, v);
            out.push(' ');
        }
        assert_eq!(
            out,
            "0 1 -2.5 123456 1.23457e6 0.3 1e-7 100 -1e-7 1e9 -1e-300 0 null "
        );
    }

    #[test]
    fn legend_shows_last_values() {
        let s = spec(Kind::Line, Unit::Percent, 0, 120, 60);
        let html = render(
            &s,
            &[series(
                "cpu",
                &[(0, Some(10.0)), (60, Some(42.12)), (120, None)],
            )],
        );
        // min, mean, max and last of 10 and 42.12.
        assert!(
            html.contains(
                "<span class=\"label\">cpu</span></td><td class=\"value\">10%</td>\
                 <td class=\"value\">26.1%</td><td class=\"value\">42.1%</td>\
                 <td class=\"value\">42.1%</td>"
            ),
            "{html}"
        );
    }

    #[test]
    fn many_points_are_decimated() {
        let s = spec(Kind::Line, Unit::None, 0, 100_000, 1);
        let pts: Vec<_> = (0..=100_000).map(|i| (i, Some((i % 10) as f64))).collect();
        let html = render(&s, &[series("dense", &pts)]);
        let d = path_d(&html, "line s0");
        assert_eq!(d.matches('M').count(), 1);
        assert!(d.len() < 60_000, "{}", d.len());
    }

    #[test]
    fn renders_quickly() {
        let s = spec(Kind::Stacked, Unit::Bytes, T0, T0 + 299 * 60, 60);
        let all: Vec<Series> = (0..10)
            .map(|k| {
                let pts = (0..300)
                    .map(|i| (T0 + i * 60, (i % 50 != k).then_some((i * k) as f64 * 1e6)))
                    .collect();
                Series {
                    label: format!("s{k}"),
                    points: pts,
                }
            })
            .collect();
        let t = std::time::Instant::now();
        let runs = 20;
        for _ in 0..runs {
            assert!(render(&s, &all).len() > 10_000);
        }
        // Generous: unoptimised test builds are far slower than release.
        let each = t.elapsed() / runs;
        assert!(each < std::time::Duration::from_millis(50), "{each:?}");
    }

    #[test]
    fn sparklines_break_at_gaps_and_scale_to_their_peak() {
        assert_eq!(sparkline(&[]), "");
        assert_eq!(sparkline(&[None, Some(0.0)]), "");
        let svg = sparkline(&[Some(1.0), Some(2.0), None, Some(2.0)]);
        assert!(svg.starts_with("<svg class=\"spark\""), "{svg}");
        assert_eq!(
            svg.matches('M').count(),
            2,
            "a new line after the gap: {svg}"
        );
        assert!(svg.contains("40.0,1.0"), "the peak touches the top: {svg}");
    }
}
