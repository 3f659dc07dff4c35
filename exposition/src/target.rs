//! Target labels (`job`, `instance`, ...) and how they merge with the labels an exporter
//! exposed, with Prometheus's `honor_labels` semantics.

use crate::cursor::is_label_name;
use crate::error::TargetLabelError;
use perch_remote_write::Label;

/// Labels the scraper adds to every series of a target: valid label names not starting
/// with `__`, each once, with non-empty values. Kept sorted by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetLabels(Vec<Label>);

impl TargetLabels {
    /// Checks and sorts the labels.
    pub fn new<N, V>(labels: impl IntoIterator<Item = (N, V)>) -> Result<Self, TargetLabelError>
    where
        N: Into<String>,
        V: Into<String>,
    {
        let mut list: Vec<Label> = Vec::new();
        for (name, value) in labels {
            let (name, value) = (name.into(), value.into());
            if !is_label_name(&name) {
                return Err(TargetLabelError::InvalidName { name });
            }
            if name.starts_with("__") {
                return Err(TargetLabelError::ReservedName { name });
            }
            if value.is_empty() {
                return Err(TargetLabelError::EmptyValue { name });
            }
            match list.binary_search_by(|l| l.name.cmp(&name)) {
                Ok(_) => return Err(TargetLabelError::Duplicate { name }),
                Err(at) => list.insert(at, Label { name, value }),
            }
        }
        Ok(TargetLabels(list))
    }

    /// The labels, sorted by name.
    pub fn as_slice(&self) -> &[Label] {
        &self.0
    }

    /// Merges the target labels into `labels` (sorted by name, names unique, no empty
    /// values; so they stay).
    ///
    /// With `honor` (Prometheus's `honor_labels: true`) a label the exporter set wins and the
    /// target's is dropped. Without it the target's wins and the exporter's value moves to
    /// `exported_<name>` (or `exported_exported_<name>`, ... the first name not in use),
    /// conflicts handled shortest name first, exactly as Prometheus does.
    pub(crate) fn apply(&self, labels: &mut Vec<Label>, honor: bool) {
        let mut conflicts: Vec<Label> = Vec::new();
        for target in &self.0 {
            match find(labels, &target.name) {
                Ok(_) if honor => {}
                Ok(at) => {
                    if let Some(existing) = labels.get_mut(at) {
                        let exposed = std::mem::replace(&mut existing.value, target.value.clone());
                        conflicts.push(Label {
                            name: target.name.clone(),
                            value: exposed,
                        });
                    }
                }
                Err(at) => labels.insert(at, target.clone()),
            }
        }
        conflicts.sort_by_key(|l| l.name.len());
        for conflict in conflicts {
            let mut name = conflict.name;
            loop {
                name.insert_str(0, "exported_");
                if let Err(at) = find(labels, &name) {
                    labels.insert(
                        at,
                        Label {
                            name,
                            value: conflict.value,
                        },
                    );
                    break;
                }
            }
        }
    }
}

fn find(labels: &[Label], name: &str) -> Result<usize, usize> {
    labels.binary_search_by(|l| l.name.as_str().cmp(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Vec<Label> {
        let mut v: Vec<Label> = pairs
            .iter()
            .map(|(n, v)| Label {
                name: n.to_string(),
                value: v.to_string(),
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    fn target() -> TargetLabels {
        TargetLabels::new([("job", "node"), ("instance", "db1:9100")]).unwrap_or_default()
    }

    #[test]
    fn adds_missing_labels() {
        for honor in [false, true] {
            let mut got = labels(&[("__name__", "up"), ("mode", "idle")]);
            target().apply(&mut got, honor);
            assert_eq!(
                got,
                labels(&[
                    ("__name__", "up"),
                    ("instance", "db1:9100"),
                    ("job", "node"),
                    ("mode", "idle")
                ])
            );
        }
    }

    #[test]
    fn honor_labels_keeps_exporters() {
        let mut got = labels(&[("__name__", "up"), ("job", "mysql")]);
        target().apply(&mut got, true);
        assert_eq!(
            got,
            labels(&[
                ("__name__", "up"),
                ("instance", "db1:9100"),
                ("job", "mysql")
            ])
        );
    }

    #[test]
    fn conflicts_become_exported() {
        let mut got = labels(&[
            ("__name__", "up"),
            ("job", "mysql"),
            ("exported_job", "taken"),
            ("instance", "x"),
        ]);
        target().apply(&mut got, false);
        assert_eq!(
            got,
            labels(&[
                ("__name__", "up"),
                ("exported_exported_job", "mysql"),
                ("exported_instance", "x"),
                ("exported_job", "taken"),
                ("instance", "db1:9100"),
                ("job", "node"),
            ])
        );
    }

    #[test]
    fn exported_name_can_collide_with_a_target_label() {
        let t = TargetLabels::new([("job", "node"), ("exported_job", "t")]).unwrap_or_default();
        let mut got = labels(&[("__name__", "up"), ("job", "mysql")]);
        t.apply(&mut got, false);
        assert_eq!(
            got,
            labels(&[
                ("__name__", "up"),
                ("exported_exported_job", "mysql"),
                ("exported_job", "t"),
                ("job", "node"),
            ])
        );
    }

    #[test]
    fn rejects_bad_target_labels() {
        assert_eq!(
            TargetLabels::new([("in-stance", "x")]),
            Err(TargetLabelError::InvalidName {
                name: "in-stance".into()
            })
        );
        assert_eq!(
            TargetLabels::new([("__name__", "x")]),
            Err(TargetLabelError::ReservedName {
                name: "__name__".into()
            })
        );
        assert_eq!(
            TargetLabels::new([("job", "a"), ("job", "b")]),
            Err(TargetLabelError::Duplicate { name: "job".into() })
        );
        assert_eq!(
            TargetLabels::new([("job", "")]),
            Err(TargetLabelError::EmptyValue { name: "job".into() })
        );
        assert_eq!(target().as_slice()[0].name, "instance");
    }
}
