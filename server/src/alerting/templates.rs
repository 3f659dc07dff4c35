//! The built-in rules: templates with named parameters (threshold, duration, severity), as
//! PMM's, turned on or off and tuned by an Editor, per node label where wanted, and rendered
//! into one vmalert rule file.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What a parameter holds; each kind has one strict syntax, so that a value can go into a
/// rule's text as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamKind {
    /// `30s`, `5m`, `2h`, `1d`.
    Duration,
    /// A number of 0..=100.
    Percent,
    /// A non-negative number.
    Count,
    /// Seconds, a non-negative number.
    Seconds,
    /// `critical`, `warning` or `info`.
    Severity,
}

impl ParamKind {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "duration" => Self::Duration,
            "percent" => Self::Percent,
            "count" => Self::Count,
            "seconds" => Self::Seconds,
            "severity" => Self::Severity,
            _ => return None,
        })
    }

    /// Checks `value`; the error says what is wanted.
    pub fn check(self, value: &str) -> Result<(), String> {
        let number = || {
            let ok = !value.is_empty()
                && value.len() <= 12
                && value.chars().all(|c| c.is_ascii_digit() || c == '.')
                && value.parse::<f64>().is_ok_and(f64::is_finite);
            ok.then(|| value.parse::<f64>().unwrap_or_default())
        };
        match self {
            Self::Duration => duration_seconds(value)
                .filter(|s| *s > 0)
                .map(|_| ())
                .ok_or_else(|| {
                    format!(
                        "{value:?} is not a duration: use a number and s, m, h or d, such as 5m"
                    )
                }),
            Self::Percent => number()
                .filter(|n| *n <= 100.0)
                .map(|_| ())
                .ok_or_else(|| format!("{value:?} is not a percentage from 0 to 100")),
            Self::Count | Self::Seconds => number()
                .map(|_| ())
                .ok_or_else(|| format!("{value:?} is not a non-negative number")),
            Self::Severity => ["critical", "warning", "info"]
                .contains(&value)
                .then_some(())
                .ok_or_else(|| {
                    format!("{value:?} is not a severity: use critical, warning or info")
                }),
        }
    }
}

/// Seconds in a duration such as `90s`, `5m`, `2h`, `1d`.
pub fn duration_seconds(value: &str) -> Option<u64> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 6 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(
        n * match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86400,
            _ => return None,
        },
    )
}

#[derive(Debug, Clone, Serialize)]
pub struct Param {
    pub name: String,
    pub kind: ParamKind,
    pub default: String,
    pub about: String,
}

/// One built-in template.
#[derive(Debug, Clone, Serialize)]
pub struct Template {
    pub id: &'static str,
    pub title: String,
    pub about: String,
    pub params: Vec<Param>,
    /// The rules, with placeholders.
    #[serde(skip)]
    body: String,
}

impl Template {
    fn parse(id: &'static str, text: &str) -> Result<Self, String> {
        let (mut title, mut about, mut params) = (String::new(), String::new(), Vec::new());
        let mut body = String::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# title: ") {
                title = rest.to_owned();
            } else if let Some(rest) = line.strip_prefix("# about: ") {
                about = rest.to_owned();
            } else if let Some(rest) = line.strip_prefix("# param: ") {
                let mut parts = rest.splitn(4, ' ');
                let (Some(name), Some(kind), Some(default), Some(what)) =
                    (parts.next(), parts.next(), parts.next(), parts.next())
                else {
                    return Err(format!("{id}: a param line needs: name kind default about"));
                };
                let kind = ParamKind::parse(kind).ok_or(format!("{id}: unknown kind {kind}"))?;
                kind.check(default)
                    .map_err(|e| format!("{id}: {name}: {e}"))?;
                params.push(Param {
                    name: name.to_owned(),
                    kind,
                    default: default.to_owned(),
                    about: what.to_owned(),
                });
            } else if !line.starts_with('#') {
                body.push_str(line);
                body.push('\n');
            }
        }
        if title.is_empty() || body.trim().is_empty() {
            return Err(format!("{id}: needs a title and rules"));
        }
        Ok(Self {
            id,
            title,
            about,
            params,
            body,
        })
    }

    /// The alert names this template defines.
    pub fn alerts(&self) -> Vec<&str> {
        self.body
            .lines()
            .filter_map(|l| l.strip_prefix("- alert: "))
            .map(str::trim)
            .collect()
    }

    /// The rules for one instance: `values` for each parameter (else its default) and
    /// `selector` (`,name="value",...`) inside every metric selector.
    fn render(&self, values: &BTreeMap<String, String>, selector: &str) -> String {
        let mut out = self.body.replace("[[selector]]", selector);
        for p in &self.params {
            let value = values
                .get(&p.name)
                .filter(|v| p.kind.check(v).is_ok())
                .unwrap_or(&p.default);
            if p.kind == ParamKind::Duration {
                let secs = duration_seconds(value).unwrap_or_default().to_string();
                out = out.replace(&format!("[[{}_seconds]]", p.name), &secs);
            }
            out = out.replace(&format!("[[{}]]", p.name), value);
        }
        out
    }
}

/// Every built-in template, parsed once.
pub fn builtin() -> &'static [Template] {
    static ALL: std::sync::OnceLock<Vec<Template>> = std::sync::OnceLock::new();
    ALL.get_or_init(|| {
        perch_ui::alert_templates()
            .iter()
            .map(|(id, text)| {
                Template::parse(id, text).unwrap_or_else(|e| panic!("built-in alert template {e}"))
            })
            .collect()
    })
}

/// A rule's tuning for the nodes that carry one label value.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Override {
    pub label: String,
    pub value: String,
    pub enabled: bool,
    #[serde(default)]
    pub params: BTreeMap<String, String>,
}

/// An Editor's choices for one template.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RuleSetting {
    pub enabled: bool,
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    #[serde(default)]
    pub overrides: Vec<Override>,
}

impl Default for RuleSetting {
    fn default() -> Self {
        Self {
            enabled: true,
            params: BTreeMap::new(),
            overrides: Vec::new(),
        }
    }
}

/// A label name as Prometheus allows it, not reserved (`__...`).
fn label_name_ok(name: &str) -> bool {
    perch_remote_write::is_label_name(name) && !name.starts_with("__") && name.len() <= 100
}

/// A label value as it goes into a PromQL string.
fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl RuleSetting {
    /// Checks an Editor's setting against its template; the error names the field.
    pub fn check(&self, template: &Template) -> Result<(), String> {
        let check_params = |params: &BTreeMap<String, String>| {
            for (name, value) in params {
                let p = template
                    .params
                    .iter()
                    .find(|p| &p.name == name)
                    .ok_or_else(|| format!("{} has no parameter {name:?}", template.id))?;
                p.kind.check(value).map_err(|e| format!("{name}: {e}"))?;
            }
            Ok::<_, String>(())
        };
        check_params(&self.params)?;
        if self.overrides.len() > 50 {
            return Err("at most 50 overrides per rule".into());
        }
        for o in &self.overrides {
            if !label_name_ok(&o.label) {
                return Err(format!("{:?} is not a label name", o.label));
            }
            if o.value.is_empty() || o.value.len() > 200 || o.value.chars().any(char::is_control) {
                return Err(format!(
                    "the value for {} must be 1 to 200 printable characters",
                    o.label
                ));
            }
            check_params(&o.params)?;
        }
        Ok(())
    }
}

/// The rule file vmalert evaluates for the built-in rules, with every template's setting
/// (a missing one is the template's defaults, on).
pub fn render(settings: &BTreeMap<String, RuleSetting>, interval: &str) -> String {
    let mut out = String::from(
        "# Written by Perch from its built-in templates and the settings made in its Rules page; edits here are overwritten.\ngroups:\n",
    );
    for t in builtin() {
        let setting = settings.get(t.id).cloned().unwrap_or_default();
        let mut rules = String::new();
        let mut rest = String::new();
        for o in &setting.overrides {
            let matcher = format!(",{}={}", o.label, quote(&o.value));
            rest.push_str(&format!(",{}!={}", o.label, quote(&o.value)));
            if o.enabled {
                let mut values = setting.params.clone();
                values.extend(o.params.clone());
                rules.push_str(&t.render(&values, &matcher));
            }
        }
        if setting.enabled {
            rules.push_str(&t.render(&setting.params, &rest));
        }
        if rules.is_empty() {
            continue;
        }
        out.push_str(&format!(
            "- name: perch-{}\n  interval: {interval}\n  rules:\n",
            t.id
        ));
        // Each alert names its template (group labels are vmalert's alone; Prometheus
        // evaluates these files too).
        let rules = rules.replace(
            "\n  labels:\n",
            &format!("\n  labels:\n    perch_rule: {}\n", t.id),
        );
        for line in rules.lines() {
            out.push_str("  ");
            out.push_str(line);
            out.push('\n');
        }
    }
    if !out.contains("- name:") {
        out.push_str("  []\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses_and_renders_without_placeholders() {
        assert!(builtin().len() >= 15);
        let text = render(&BTreeMap::new(), "1m");
        assert!(!text.contains("[["), "{text}");
        for t in builtin() {
            assert!(text.contains(&format!("perch-{}", t.id)));
        }
    }

    #[test]
    fn overrides_split_the_nodes_and_bad_values_are_refused() {
        let t = builtin().iter().find(|t| t.id == "cpu_busy").unwrap();
        let mut s = RuleSetting::default();
        s.params.insert("threshold".into(), "80".into());
        s.overrides.push(Override {
            label: "environment".into(),
            value: "te\"st".into(),
            enabled: true,
            params: [("threshold".to_owned(), "99".to_owned())].into(),
        });
        s.check(t).unwrap();
        let text = render(&[("cpu_busy".to_owned(), s.clone())].into(), "30s");
        assert!(
            text.contains(r#"environment="te\"st"}[5m]))) > 99"#),
            "{text}"
        );
        assert!(
            text.contains(r#"environment!="te\"st"}[5m]))) > 80"#),
            "{text}"
        );
        let mut bad = s.clone();
        bad.params
            .insert("threshold".into(), "80 or vector(1)".into());
        assert!(bad.check(t).unwrap_err().contains("threshold"));
        let mut bad = s.clone();
        bad.overrides[0].label = "a-b".into();
        assert!(bad.check(t).is_err());
        let mut bad = s;
        bad.params.insert("nope".into(), "1".into());
        assert!(bad.check(t).unwrap_err().contains("nope"));
        let off = RuleSetting {
            enabled: false,
            ..RuleSetting::default()
        };
        assert!(!render(&[("cpu_busy".to_owned(), off)].into(), "1m").contains("perch-cpu_busy"));
    }

    #[test]
    fn durations() {
        assert_eq!(duration_seconds("90s"), Some(90));
        assert_eq!(duration_seconds("2h"), Some(7200));
        for bad in ["", "m", "5", "5w", "-5m", "1.5m", "5m "] {
            assert_eq!(duration_seconds(bad), None, "{bad}");
        }
    }
}
