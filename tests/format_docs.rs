//! `docs/format.md` is the reference of the format (issue 18): every property the JSON
//! Schema knows, and every key of the example JSON report, must be named there.

mod support;

use std::collections::BTreeSet;
use std::path::Path;

use support::Run;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Every key under any `properties` object of a JSON Schema.
fn schema_properties(v: &serde_json::Value, out: &mut BTreeSet<String>) {
    match v {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::Object(props)) = map.get("properties") {
                out.extend(props.keys().cloned());
            }
            for child in map.values() {
                schema_properties(child, out);
            }
        }
        serde_json::Value::Array(items) => {
            for child in items {
                schema_properties(child, out);
            }
        }
        _ => {}
    }
}

/// Every object key of a JSON document.
fn json_keys(v: &serde_json::Value, out: &mut BTreeSet<String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, child) in map {
                out.insert(k.clone());
                json_keys(child, out);
            }
        }
        serde_json::Value::Array(items) => {
            for child in items {
                json_keys(child, out);
            }
        }
        _ => {}
    }
}

/// A name counts as documented when it appears as code: `` `name` `` or inside a code
/// span or block such as `name:` / `"name"` in an example.
fn undocumented<'a>(names: &'a BTreeSet<String>, doc: &str) -> Vec<&'a str> {
    names
        .iter()
        .map(String::as_str)
        .filter(|n| {
            ![
                format!("`{n}`"),
                format!("`{n}:"),
                format!(" {n}:"),
                format!("\n{n}:"),
                format!("{{{n}:"),
                format!("\"{n}\""),
            ]
            .iter()
            .any(|form| doc.contains(form.as_str()))
        })
        .collect()
}

/// The names `walk` finds in the JSON file `rel`.
fn names_in(rel: &str, walk: fn(&serde_json::Value, &mut BTreeSet<String>)) -> BTreeSet<String> {
    let json: serde_json::Value =
        serde_json::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let mut names = BTreeSet::new();
    walk(&json, &mut names);
    names
}

/// Asserts that docs/format.md names every one of `names` (`what` they are, for the message).
#[track_caller]
fn assert_in_reference(names: &BTreeSet<String>, what: &str) {
    let missing = undocumented(names, &read("docs/format.md"));
    assert!(
        missing.is_empty(),
        "docs/format.md does not mention these {what}: {missing:?}"
    );
}

#[test]
fn every_schema_property_is_in_the_format_reference() {
    let names = names_in("schema/faultline.schema.json", schema_properties);
    assert!(
        names.len() > 50,
        "the schema walk found too few properties: {names:?}"
    );
    for must in ["all_containers", "min", "engine", "strategy", "tc_image"] {
        assert!(names.contains(must), "the schema lacks `{must}`");
    }
    assert_in_reference(&names, "schema properties");
}

#[test]
fn every_key_of_the_example_report_is_in_the_format_reference() {
    let mut keys = names_in("docs/report-example.json", json_keys);
    // The report fields added since the contract, even if the example run lacks them.
    keys.extend(
        [
            "seed",
            "selection",
            "requested",
            "matched",
            "selected",
            "timeline",
            "value",
            "ttfb_ms",
            "description",
        ]
        .map(String::from),
    );
    assert_in_reference(&keys, "JSON report keys");
}

#[test]
fn the_check_is_not_vacuous() {
    let names: BTreeSet<String> = ["surely_not_a_field".to_string()].into();
    assert_eq!(
        undocumented(&names, "nothing about it here"),
        ["surely_not_a_field"]
    );
}

#[test]
fn the_readme_points_at_the_reference_in_the_repository() {
    let readme = read("README.md");
    assert!(
        readme.contains("docs/format.md"),
        "README must link docs/format.md"
    );
    assert!(
        !readme.contains("../shared/spec"),
        "README must not link outside the repository"
    );
}

/// The complete experiment examples of the reference validate. The first is the original
/// contract's example (plus `select.min`), which must stay valid: it writes `mode: one`
/// with `value: 1`, which validate used to refuse.
#[test]
fn the_experiment_examples_validate() {
    let sources = vec![("docs/format.md".to_string(), read("docs/format.md"))];
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for (source, text) in &sources {
        for (i, block) in text.split("```yaml\n").skip(1).enumerate() {
            let yaml = block.split("```").next().unwrap();
            if !(yaml.contains("version: 1") && yaml.contains("faults:")) {
                continue;
            }
            let file = dir.path().join(format!("example-{checked}.yaml"));
            std::fs::write(&file, yaml).unwrap();
            let out = Run::new(["validate"]).arg(&file).output();
            assert_eq!(
                out.code,
                Some(0),
                "yaml block {i} of {source} does not validate:\n{}\n{yaml}",
                out.stderr
            );
            checked += 1;
        }
    }
    assert!(checked >= 1, "no complete experiment example found");
}
