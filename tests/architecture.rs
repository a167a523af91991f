//! The module tree has no import cycles: the top-level modules (and the studio's parts, one
//! node each, its views as one) reference each other in one direction only. A cycle makes the
//! architecture hard to see and the pieces impossible to take apart (issue 10 item 19).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The node a module path belongs to.
fn node(parts: &[&str]) -> String {
    match parts {
        [] => "crate".into(),
        ["studio", "view", ..] => "studio::view".into(),
        ["studio", sub, ..] => format!("studio::{sub}"),
        [top, ..] => (*top).to_string(),
    }
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Identifiers after each `prefix` (`crate::a::b` gives ["a", "b"]).
fn paths_after<'a>(text: &'a str, prefix: &str) -> Vec<Vec<&'a str>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(prefix) {
        let before = rest[..i].chars().last();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let mut parts = Vec::new();
        let mut s = rest;
        loop {
            let end = s
                .find(|c: char| !(c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit()))
                .unwrap_or(s.len());
            if end == 0 {
                break;
            }
            parts.push(&s[..end]);
            if s[end..].starts_with("::") {
                s = &s[end + 2..];
            } else {
                break;
            }
        }
        out.push(parts);
    }
    out
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&root, &mut all);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for path in all {
        let rel = path.strip_prefix(&root).unwrap().with_extension("");
        let mut parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if matches!(
            parts.last().map(String::as_str),
            Some("mod" | "lib" | "main")
        ) {
            parts.pop();
        }
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        let me = node(&parts);
        let mut text = std::fs::read_to_string(&path).unwrap();
        // Unit tests may reach anywhere.
        if let Some(i) = text.find("#[cfg(test)]\nmod tests") {
            text.truncate(i);
        }
        let mut targets: Vec<Vec<&str>> = paths_after(&text, "crate::");
        let parent = &parts[..parts.len().saturating_sub(1)];
        for p in paths_after(&text, "super::") {
            let mut full: Vec<&str> = parent.to_vec();
            full.extend(p);
            targets.push(full);
        }
        for t in targets {
            let n = node(&t);
            if n != me && n != "crate" {
                edges.entry(me.clone()).or_default().insert(n);
            }
        }
    }
    edges
}

#[test]
fn the_module_tree_has_no_cycles() {
    let edges = graph();
    // Sanity: the graph is what we think it is.
    assert!(edges["cli"].contains("setup"), "{edges:?}");
    assert!(edges["studio::runtime"].contains("setup"), "{edges:?}");
    // Every path from a node must not come back to it.
    for start in edges.keys() {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<(String, Vec<String>)> = vec![(start.clone(), vec![start.clone()])];
        while let Some((n, trail)) = stack.pop() {
            for next in edges.get(&n).into_iter().flatten() {
                if next == start {
                    panic!("import cycle: {} -> {start}", trail.join(" -> "));
                }
                if seen.insert(next.clone()) {
                    let mut t = trail.clone();
                    t.push(next.clone());
                    stack.push((next.clone(), t));
                }
            }
        }
    }
}
