//! The layers of perch-server, checked: no module imports one above it, and no feature
//! imports another. (The crates below it, perch-auth and perch-upstream, are kept apart by
//! Cargo itself.)

use std::path::Path;

/// Each top-level module's layer, from the bottom.
const LAYERS: &[(&str, u8)] = &[
    ("selfmon", 0),
    ("process", 0),
    ("tls", 1),
    ("engine", 2),
    ("backup", 3),
    ("alerting", 3),
    ("request", 4),
    ("features", 5),
    ("router", 6),
    ("front", 7),
    ("config", 8),
    ("private", 8),
    ("healthcheck", 9),
    ("backup_command", 9),
    ("restore", 9),
    ("server", 9),
    ("main", 10),
];

fn layer(module: &str) -> u8 {
    LAYERS
        .iter()
        .find(|(m, _)| *m == module)
        .map(|(_, l)| *l)
        .unwrap_or_else(|| panic!("module {module} has no layer in LAYERS"))
}

/// The production code of a file: up to its test module.
fn production(text: &str) -> &str {
    text.find("#[cfg(test)]").map_or(text, |i| &text[..i])
}

/// Every `crate::a::b` path in `code`, as (a, b).
fn crate_paths(code: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        let mut parts = rest.split("::").map(|p| {
            p.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>()
        });
        let first = parts.next().unwrap_or_default();
        let second = parts.next().unwrap_or_default();
        out.push((first, second));
    }
    out
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_module_imports_one_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut faults = Vec::new();
    for file in &all {
        let rel = file.strip_prefix(&src).unwrap();
        let mut parts = rel
            .iter()
            .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned());
        let module = parts.next().unwrap();
        let feature = parts.next();
        if module == "layers" || rel.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        for (target, sub) in crate_paths(production(&text)) {
            if target == module {
                if module == "features"
                    && feature.as_deref() != Some(sub.as_str())
                    && !sub.is_empty()
                {
                    faults.push(format!(
                        "{}: a feature imports another: features::{sub}",
                        rel.display()
                    ));
                }
                continue;
            }
            if layer(&target) >= layer(&module) {
                faults.push(format!(
                    "{}: imports {target}, which is not below {module}",
                    rel.display()
                ));
            }
        }
    }
    assert!(all.len() > 40, "read only {} files", all.len());
    assert!(faults.is_empty(), "{}", faults.join("\n"));
}

#[test]
fn the_check_sees_paths() {
    assert_eq!(
        crate_paths("use crate::request::{Ctx};\nlet x = crate::engine::Engine::new();"),
        [
            ("request".to_owned(), "".to_owned()),
            ("engine".to_owned(), "Engine".to_owned())
        ]
    );
    assert_eq!(production("a\n#[cfg(test)]\nuse crate::router;"), "a\n");
}
