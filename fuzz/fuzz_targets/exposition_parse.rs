//! Any bytes through the exposition parser, in both formats, as given (checked UTF-8) and
//! as lossy UTF-8: no panic, and whatever is accepted is well formed (labels sorted and
//! unique, `__name__` and the target labels present, no empty values, one sample per
//! series, no more series than the limit).
#![no_main]

use libfuzzer_sys::fuzz_target;
use perch_exposition::{Exposition, Format, ScrapeOptions, TargetLabels, parse};

const MAX_SERIES: usize = 1000;

fn check(exposition: &Exposition, honor_labels: bool) {
    assert!(exposition.series.len() <= MAX_SERIES);
    for series in &exposition.series {
        let labels = &series.labels;
        assert!(
            labels.windows(2).all(|w| w[0].name < w[1].name),
            "{labels:?}"
        );
        assert!(labels.iter().all(|l| !l.value.is_empty()), "{labels:?}");
        assert!(labels.iter().any(|l| l.name == "__name__"), "{labels:?}");
        assert!(labels.iter().any(|l| l.name == "instance"), "{labels:?}");
        if !honor_labels {
            assert!(
                labels.iter().any(|l| l.name == "job" && l.value == "fuzz"),
                "{labels:?}"
            );
        }
        assert_eq!(series.samples.len(), 1);
    }
}

fuzz_target!(|data: &[u8]| {
    let honor_labels = data.first().is_some_and(|b| b & 1 == 1);
    let options = ScrapeOptions {
        target_labels: TargetLabels::new([("job", "fuzz"), ("instance", "127.0.0.1:9100")])
            .expect("valid target labels"),
        honor_labels,
        max_series: MAX_SERIES,
    };
    let lossy = String::from_utf8_lossy(data);
    for body in [data, lossy.as_bytes()] {
        for format in [Format::Text004, Format::OpenMetrics1] {
            if let Ok(exposition) = parse(body, format, 1_700_000_000_000, &options) {
                check(&exposition, honor_labels);
            }
        }
    }
});
