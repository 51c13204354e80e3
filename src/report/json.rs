//! `--report json`: the result as spec section 6 describes it.

use super::RunResult;

pub fn render(result: &RunResult) -> String {
    let mut text = serde_json::to_string_pretty(result).expect("the result serializes");
    text.push('\n');
    text
}
