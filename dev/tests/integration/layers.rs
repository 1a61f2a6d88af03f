//! The shared crate's modules form layers (its `lib.rs` lists them): a
//! module imports only from its own layer or those below, and no modules
//! import each other in a circle. Read from the source, so a new `use` that
//! breaks either fails here, naming the import.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use warm_transfer_dev::paths::workspace;

/// The layers, innermost first (as `shared/src/lib.rs` explains them).
const LAYERS: &[&[&str]] = &[
    &["ids", "time_budget", "logging", "https"],
    &["domain"],
    &["endpoint"],
    &[
        "twiml",
        "signature",
        "public_url",
        "token",
        "jwks",
        "auth",
        "metrics",
    ],
    &["config"],
    &["store", "twilio", "secrets"],
    &["usecases"],
    &["web"],
    &["handlers", "push"],
    &["lambda"],
];

/// Every module of the crate (`a::b`), with its source before its tests and
/// without comments.
fn modules() -> BTreeMap<String, String> {
    let root = workspace().join("shared/src");
    let mut found = BTreeMap::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.insert(module_name(&root, &path), code_of(&path));
            }
        }
    }
    found
}

fn module_name(root: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(root).unwrap().with_extension("");
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts.join("::")
}

fn code_of(file: &Path) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    let before_tests = text.split("#[cfg(test)]").next().unwrap_or_default();
    before_tests
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The paths a module names through `crate::` or `super::`, a group
/// (`crate::a::{b, c}`) as one path per entry.
fn named_paths(module: &str, code: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let chars: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let rest: String = chars[i..chars.len().min(i + 7)].iter().collect();
        let starts = (rest.starts_with("crate::") || rest.starts_with("super::"))
            && (i == 0 || !is_ident(chars[i - 1]));
        if !starts {
            i += 1;
            continue;
        }
        let mut base: Vec<String> = if rest.starts_with("crate") {
            Vec::new()
        } else {
            let mut parent: Vec<String> = module.split("::").map(str::to_owned).collect();
            parent.pop();
            parent
        };
        i += 7;
        loop {
            let start = i;
            while i < chars.len() && is_ident(chars[i]) {
                i += 1;
            }
            if i > start {
                base.push(chars[start..i].iter().collect());
            }
            if chars.get(i..i + 2) == Some(&[':', ':']) {
                i += 2;
                continue;
            }
            break;
        }
        if chars.get(i) == Some(&'{') {
            let mut depth = 0;
            let start = i + 1;
            while i < chars.len() {
                match chars[i] {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            let group: String = chars[start..i].iter().collect();
            for entry in group.split(',') {
                let first: String = entry.trim().chars().take_while(|c| is_ident(*c)).collect();
                let mut path = base.clone();
                if !first.is_empty() && first != "self" {
                    path.push(first);
                }
                paths.push(path);
            }
        } else {
            paths.push(base);
        }
    }
    paths
}

/// `pub use sub::{A, B}` in a module: `module::A` is `module::sub`.
fn re_exports(modules: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for (module, code) in modules {
        for line in code.lines() {
            let line = line.trim();
            let Some(rest) = line
                .strip_prefix("pub use ")
                .or_else(|| line.strip_prefix("pub(crate) use "))
            else {
                continue;
            };
            let Some((sub, names)) = rest.trim_end_matches(';').split_once("::") else {
                continue;
            };
            let join = |name: &str| {
                if module.is_empty() {
                    name.to_owned()
                } else {
                    format!("{module}::{name}")
                }
            };
            if !modules.contains_key(&join(sub)) {
                continue;
            }
            for name in names
                .split(|c: char| !is_ident(c))
                .filter(|n| !n.is_empty())
            {
                map.insert(join(name), join(sub));
            }
        }
    }
    map
}

/// Which module each module imports from (itself and its parents aside).
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let modules = modules();
    let re_exported = re_exports(&modules);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, code) in &modules {
        for path in named_paths(module, code) {
            for k in (1..=path.len()).rev() {
                let joined = path[..k].join("::");
                let target = re_exported.get(&joined).cloned().unwrap_or(joined);
                if modules.contains_key(&target) {
                    let own = *module == target || module.starts_with(&format!("{target}::"));
                    if !own {
                        edges.entry(module.clone()).or_default().insert(target);
                    }
                    break;
                }
            }
        }
        edges.entry(module.clone()).or_default();
    }
    edges
}

fn layer_of(module: &str) -> Option<usize> {
    let top = module.split("::").next().unwrap_or_default();
    LAYERS.iter().position(|layer| layer.contains(&top))
}

/// A circle through `start`, if its imports lead back to it.
fn circle_from(start: &str, edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    let mut path = vec![start.to_owned()];
    let mut seen = BTreeSet::new();
    fn walk(
        start: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
        edges: &BTreeMap<String, BTreeSet<String>>,
    ) -> bool {
        let here = path.last().unwrap().clone();
        for next in edges.get(&here).into_iter().flatten() {
            if next == start {
                path.push(next.clone());
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(start, path, seen, edges) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    walk(start, &mut path, &mut seen, edges).then_some(path)
}

#[test]
fn every_module_sits_in_a_layer_and_imports_only_from_its_own_or_below() {
    let edges = imports();
    let mut wrong = Vec::new();
    for (module, targets) in &edges {
        let Some(layer) = layer_of(module) else {
            if !module.is_empty() {
                wrong.push(format!(
                    "{module} is in no layer (add it to LAYERS and lib.rs)"
                ));
            }
            continue;
        };
        for target in targets {
            if layer_of(target).is_some_and(|below| below > layer) {
                wrong.push(format!("{module} imports {target} from a layer above it"));
            }
        }
    }
    assert_eq!(wrong, Vec::<String>::new());
}

#[test]
fn no_modules_import_each_other_in_a_circle() {
    let edges = imports();
    let circles: BTreeSet<String> = edges
        .keys()
        .filter_map(|module| circle_from(module, &edges))
        .map(|circle| circle.join(" -> "))
        .collect();
    assert_eq!(circles, BTreeSet::new());
}

#[test]
fn the_checks_see_an_import_and_a_circle() {
    // The reader finds the imports that make a circle (`a` <-> `b`) and
    // an upward one, so the tests above can fail.
    let a = named_paths(
        "handlers::a",
        "use super::b::Thing;\nuse crate::{web::X, lambda};",
    );
    assert!(a.contains(&vec!["handlers".into(), "b".into(), "Thing".into()]));
    assert!(a.contains(&vec!["web".into()]));
    assert!(a.contains(&vec!["lambda".into()]));
    let edges: BTreeMap<String, BTreeSet<String>> = [
        ("a".to_owned(), BTreeSet::from(["b".to_owned()])),
        ("b".to_owned(), BTreeSet::from(["a".to_owned()])),
    ]
    .into();
    assert_eq!(
        circle_from("a", &edges),
        Some(vec!["a".into(), "b".into(), "a".into()])
    );
    assert!(layer_of("handlers::app") < layer_of("lambda"));
    // The crate as it is: the domain imports nothing but the vocabulary.
    let edges = imports();
    assert!(edges["handlers::front_end"].contains("usecases::follow_up"));
    assert!(
        edges["domain::session"]
            .iter()
            .all(|m| m.starts_with("domain") || m == "ids")
    );
}
