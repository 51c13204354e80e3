//! The JSON Schema of the file format, for editors (yaml-language-server) and tools.

use crate::experiment::model::Document;

/// The schema as pretty JSON, ending with a newline, exactly as committed in
/// `schema/faultline.schema.json`.
pub(crate) fn json() -> String {
    let mut schema = schemars::schema_for!(Document);
    schema.insert(
        "title".into(),
        serde_json::Value::String("faultline experiment or scenario, format version 1".into()),
    );
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema serializes");
    text.push('\n');
    text
}
