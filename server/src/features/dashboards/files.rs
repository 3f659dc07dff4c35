//! Dashboards as data: TOML files of panels (title, PromQL, unit, chart kind, legend
//! template). The built-in ones come with perch-ui (`ui/dashboards/`); an operator adds
//! their own as `<data>/dashboards/<name>.toml`, read when a page asks for them, so no
//! rebuild or restart is needed. One renderer draws them all.

use std::collections::BTreeMap;
use std::path::Path;

use perch_ui::chart::Kind;
use perch_ui::units::Unit;
use serde::Deserialize;

/// A dashboard, checked.
#[derive(Debug, Clone)]
pub struct Dashboard {
    /// The file name without `.toml`: its address, `/d/<name>`.
    pub name: String,
    pub title: String,
    pub panels: Vec<Panel>,
}

impl Dashboard {
    /// Drawn for one node: some panel uses `$node_id` (and none `$service_name`).
    pub fn per_node(&self) -> bool {
        self.panels.iter().any(|p| p.expr.contains("$node_id")) && !self.per_service()
    }

    /// Drawn for one database service: some panel uses `$service_name`.
    pub fn per_service(&self) -> bool {
        self.panels.iter().any(|p| p.expr.contains("$service_name"))
    }
}

#[derive(Debug, Clone)]
pub struct Panel {
    pub title: String,
    pub expr: String,
    pub unit: Unit,
    pub kind: Kind,
    /// `{{label}}` is replaced by the series' value of `label`.
    pub legend: String,
    pub y_max: Option<f64>,
    /// Legend entries in this order first (by meaning: user before system, 1m before 5m);
    /// the rest after them, alphabetically.
    pub order: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDashboard {
    title: String,
    #[serde(default)]
    panel: Vec<RawPanel>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPanel {
    title: String,
    expr: String,
    #[serde(default)]
    unit: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    legend: Option<String>,
    #[serde(default)]
    y_max: Option<f64>,
    #[serde(default)]
    order: Vec<String>,
}

/// Parses a dashboard file; the error names the panel and the fault.
pub fn parse(name: &str, text: &str) -> Result<Dashboard, String> {
    let raw: RawDashboard = toml::from_str(text).map_err(|e| e.message().to_owned())?;
    let mut panels = Vec::with_capacity(raw.panel.len());
    for (i, p) in raw.panel.into_iter().enumerate() {
        let at = |fault: String| format!("panel {} ({}): {fault}", i + 1, p.title);
        if p.expr.trim().is_empty() {
            return Err(at("expr is empty".into()));
        }
        let unit = match p.unit.as_deref() {
            None => Unit::None,
            Some(u) => Unit::parse(u).ok_or_else(|| {
                at(format!(
                    "unit '{u}' is not one of bytes, bytes/s, bits/s, percent, percentunit, seconds, ops/s, short, none"
                ))
            })?,
        };
        let kind = match p.kind.as_deref() {
            None | Some("line") => Kind::Line,
            Some("stacked") => Kind::Stacked,
            Some(k) => return Err(at(format!("kind '{k}' is not line or stacked"))),
        };
        panels.push(Panel {
            legend: p.legend.unwrap_or_default(),
            title: p.title,
            expr: p.expr,
            unit,
            kind,
            y_max: p.y_max,
            order: p.order,
        });
    }
    Ok(Dashboard {
        name: name.to_owned(),
        title: raw.title,
        panels,
    })
}

/// A dashboard's name: a file stem of letters, digits, `-` and `_`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The built-in dashboard `name`.
pub fn builtin(name: &str) -> Option<Dashboard> {
    perch_ui::dashboards()
        .iter()
        .find(|(n, _)| *n == name)
        .and_then(|(n, text)| parse(n, text).ok())
}

/// Every dashboard: the built-in ones, then those in `dir` (a custom one with a built-in's
/// name replaces it). Files that do not parse are listed with their error.
pub fn all(dir: &Path) -> (Vec<Dashboard>, Vec<(String, String)>) {
    let mut found: BTreeMap<String, Dashboard> = perch_ui::dashboards()
        .iter()
        .filter_map(|(n, text)| parse(n, text).ok())
        .map(|d| (d.name.clone(), d))
        .collect();
    let mut broken = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(stem) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".toml"))
            else {
                continue;
            };
            if !valid_name(stem) {
                continue;
            }
            match std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|text| parse(stem, &text))
            {
                Ok(d) => {
                    found.insert(d.name.clone(), d);
                }
                Err(e) => broken.push((stem.to_owned(), e)),
            }
        }
    }
    (found.into_values().collect(), broken)
}

/// The dashboard `name`: a custom file in `dir` first, else a built-in one.
pub fn find(dir: &Path, name: &str) -> Result<Option<Dashboard>, String> {
    if !valid_name(name) {
        return Ok(None);
    }
    let file = dir.join(format!("{name}.toml"));
    match std::fs::read_to_string(&file) {
        Ok(text) => parse(name, &text).map(Some),
        Err(_) => Ok(builtin(name)),
    }
}

/// A series as Prometheus writes it: `name{label="value", ...}`.
pub fn series_name(labels: &BTreeMap<String, String>) -> String {
    let name = labels.get("__name__").map_or("", String::as_str);
    let inner: Vec<String> = labels
        .iter()
        .filter(|(k, _)| k.as_str() != "__name__")
        .map(|(k, v)| format!("{k}=\"{v}\""))
        .collect();
    if inner.is_empty() && !name.is_empty() {
        name.to_owned()
    } else {
        format!("{name}{{{}}}", inner.join(", "))
    }
}

/// `expr` with `$node_id`, `$service_name` and `$rate` replaced. The node id is a number
/// and a service name is letters, digits, `_`, `-` and `.` ([`valid_service`](crate::request::valid_service)), so neither
/// needs quoting; the rate window is a duration Perch chose.
pub fn expand(expr: &str, node_id: Option<u64>, service: Option<&str>, rate: &str) -> String {
    let mut out = expr.replace("$rate", rate);
    if let Some(id) = node_id {
        out = out.replace("$node_id", &id.to_string());
    }
    if let Some(name) = service.filter(|n| crate::request::valid_service(n)) {
        out = out.replace("$service_name", name);
    }
    out
}

/// The legend for a series: `{{label}}` replaced by its value; the whole series, as
/// Prometheus writes it, when the template is empty.
pub fn legend(template: &str, labels: &BTreeMap<String, String>) -> String {
    if template.is_empty() {
        return series_name(labels);
    }
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                let key = after[..end].trim();
                out.push_str(labels.get(key).map_or("", String::as_str));
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_dashboards_parse() {
        for (name, text) in perch_ui::dashboards() {
            let d = parse(name, text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!d.panels.is_empty(), "{name}");
        }
        let node = builtin("node").unwrap();
        assert!(node.panels.iter().all(|p| p.expr.contains("$node_id")));
        assert!(node.per_node() && !node.per_service());
        for name in ["mysql", "postgresql"] {
            let d = builtin(name).unwrap();
            assert!(d.per_service() && !d.per_node(), "{name}");
            assert!(
                d.panels
                    .iter()
                    .all(|p| p.expr.contains("service_name=\"$service_name\"")
                        && p.expr.contains("node_id=\"$node_id\"")),
                "{name}: every panel selects one service of one node"
            );
        }
    }

    #[test]
    fn mistakes_are_named() {
        let err = parse(
            "x",
            "title = \"X\"\n[[panel]]\ntitle = \"A\"\nexpr = \"up\"\nunit = \"furlongs\"",
        )
        .unwrap_err();
        assert!(err.contains("panel 1 (A): unit 'furlongs'"), "{err}");
        let err = parse(
            "x",
            "title = \"X\"\n[[panel]]\ntitle = \"A\"\nexpr = \"up\"\nkind = \"pie\"",
        )
        .unwrap_err();
        assert!(err.contains("kind 'pie'"), "{err}");
        let err = parse(
            "x",
            "title = \"X\"\n[[panel]]\ntitle = \"A\"\nexpr = \"up\"\ncolour = 1",
        )
        .unwrap_err();
        assert!(err.contains("unknown field"), "{err}");
    }

    #[test]
    fn legends_and_variables() {
        let labels: BTreeMap<String, String> = [("mode", "user"), ("node_id", "3")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        assert_eq!(legend("{{mode}}", &labels), "user");
        assert_eq!(
            legend("cpu {{ mode }} on {{missing}}", &labels),
            "cpu user on "
        );
        assert_eq!(legend("", &labels), "{mode=\"user\", node_id=\"3\"}");
        assert_eq!(legend("{{mode", &labels), "{{mode");
        assert_eq!(
            expand(
                "rate(x{node_id=\"$node_id\"}[$rate]) and \"$1\"",
                Some(7),
                None,
                "2m"
            ),
            "rate(x{node_id=\"7\"}[2m]) and \"$1\""
        );
        assert_eq!(
            expand(
                "x{service_name=\"$service_name\"}",
                None,
                Some("db-1.prod"),
                "2m"
            ),
            "x{service_name=\"db-1.prod\"}"
        );
        // A name that could break out of the quotes is never put in.
        assert_eq!(
            expand(
                "x{service_name=\"$service_name\"}",
                None,
                Some("a\"} or up{x=\""),
                "2m"
            ),
            "x{service_name=\"$service_name\"}"
        );
    }

    #[test]
    fn custom_files_replace_and_broken_ones_are_listed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("mysql.toml"),
            "title = \"MySQL\"\n[[panel]]\ntitle = \"QPS\"\nexpr = \"rate(mysql_global_status_queries[$rate])\"\nunit = \"ops/s\"",
        )
        .unwrap();
        std::fs::write(dir.path().join("bad.toml"), "title = ").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        let (all, broken) = all(dir.path());
        assert!(all.iter().any(|d| d.name == "mysql"));
        assert!(all.iter().any(|d| d.name == "node"));
        assert_eq!(broken.len(), 1);
        assert_eq!(broken[0].0, "bad");
        assert_eq!(find(dir.path(), "mysql").unwrap().unwrap().title, "MySQL");
        assert!(find(dir.path(), "../etc/passwd").unwrap().is_none());
        assert!(find(dir.path(), "bad").is_err());
    }
}
