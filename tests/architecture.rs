//! The shape of the crate (issue 14): no import circles between its top-level modules,
//! and the platform knows nothing of faults. Read from the source text, so a new `use`
//! that closes a circle fails here with the file and line that made it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file below `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`src/fault/kill.rs` → `fault`), or `None`
/// for the crate root and the binary.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_string_lossy();
    let name = first.trim_end_matches(".rs").to_string();
    (!matches!(name.as_str(), "lib" | "main")).then_some(name)
}

/// The top-level modules a line names through `crate::`, whether in a path
/// (`crate::report::Verdict`) or a grouped import (`use crate::{fault, report}`).
fn named_modules(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (i, _) in line.match_indices("crate::") {
        let rest = &line[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = group.split('}').next().unwrap_or("");
            out.extend(inner.split(',').map(|p| ident(p.trim())));
        } else {
            out.push(ident(rest));
        }
    }
    out.retain(|m| !m.is_empty() && m != "self");
    out
}

type Edges = BTreeMap<String, BTreeMap<String, String>>;

/// module → (module it names → the first `file:line` that names it).
fn edges() -> Edges {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    let mut edges = Edges::new();
    for file in files {
        let Some(from) = module_of(&src, &file) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).expect("a readable source file");
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for to in named_modules(code) {
                if to != from {
                    edges
                        .entry(from.clone())
                        .or_default()
                        .entry(to)
                        .or_insert_with(|| format!("{}:{}", file.display(), n + 1));
                }
            }
        }
    }
    edges
}

/// A circle through the graph, as the list of modules with the place of each step.
fn find_circle(edges: &Edges) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &Edges,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|p| p == node) {
            let mut circle = path[start..].to_vec();
            circle.push(node.to_string());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in edges.get(node).into_iter().flat_map(BTreeMap::keys) {
            if let Some(c) = visit(next, edges, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        if let Some(c) = visit(node, edges, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

#[test]
fn the_parser_sees_paths_and_grouped_imports() {
    assert_eq!(named_modules("use crate::report::Verdict;"), ["report"]);
    assert_eq!(
        named_modules("use crate::{fault::Undo, report, self};"),
        ["fault", "report"]
    );
    assert_eq!(
        named_modules("let x = crate::plan::describe(crate::run::go());"),
        ["plan", "run"]
    );
    // The check itself finds a circle when there is one.
    let mut e = Edges::new();
    e.entry("a".into())
        .or_default()
        .insert("b".into(), "x:1".into());
    e.entry("b".into())
        .or_default()
        .insert("c".into(), "x:2".into());
    assert_eq!(find_circle(&e), None);
    e.entry("c".into())
        .or_default()
        .insert("a".into(), "x:3".into());
    assert_eq!(find_circle(&e).unwrap(), ["a", "b", "c", "a"]);
}

#[test]
fn no_import_circles_between_top_level_modules() {
    let edges = edges();
    assert!(edges.len() > 5, "the source was read: {edges:?}");
    if let Some(circle) = find_circle(&edges) {
        let steps: Vec<String> = circle
            .windows(2)
            .map(|w| format!("{} → {} ({})", w[0], w[1], edges[&w[0]][&w[1]]))
            .collect();
        panic!("an import circle:\n  {}", steps.join("\n  "));
    }
}

#[test]
fn the_platform_imports_nothing_from_faults() {
    let edges = edges();
    let platform = edges.get("platform").expect("platform names other modules");
    assert!(
        !platform.contains_key("fault"),
        "platform/ imports fault/ at {}",
        platform["fault"]
    );
}
