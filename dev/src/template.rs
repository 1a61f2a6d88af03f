//! `template.yaml`, the SAM template, is rendered from `template.yaml.j2`,
//! where what repeats (a function's resources, a route's alarms, checkov's
//! reasons) is written once. The rendering is committed, so SAM, checkov
//! and whoever reads the deployed template see plain CloudFormation; a
//! deployment test fails while the committed file is not what its source
//! renders (`cargo run -p warm-transfer-dev --bin template` writes it).

use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Serde, Value};
use minijinja::{AutoEscape, Environment, UndefinedBehavior};

/// The source, in the workspace root: a YAML document of the lists that
/// repeat, a `---` line, then the template in Jinja over those lists.
pub const SOURCE: &str = "template.yaml.j2";
/// What SAM deploys, in the workspace root.
pub const OUTPUT: &str = "template.yaml";

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Renders the template from the source's text.
pub fn render(source: &str) -> Result<String, Error> {
    let (lists, body) = source
        .split_once("\n---\n")
        .ok_or_else(|| format!("{SOURCE}: no `---` line after the lists"))?;
    // The lists, as a Jinja comment of as many lines: the template's errors
    // then name the source's own line numbers.
    let body = format!("{{#{}#}}{body}", "\n".repeat(lists.lines().count() + 1));
    let lists: serde_norway::Value =
        serde_norway::from_str(lists).map_err(|e| format!("{SOURCE}, the lists: {e}"))?;
    let mut env = Environment::new();
    // A block tag's line leaves nothing behind, so the loops keep the YAML's
    // indentation and the output has no stray blank lines.
    env.set_syntax(
        SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()?,
    );
    // A misspelt field fails the rendering instead of printing nothing.
    env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.add_filter("json", json);
    let fail = |e: minijinja::Error| format!("{e:#}");
    env.add_template(SOURCE, &body).map_err(fail)?;
    let template = env.get_template(SOURCE).map_err(fail)?;
    Ok(template.render(Value::from(Serde(&lists))).map_err(fail)?)
}

/// A value as indented JSON (the dashboard's body), in the lists' order.
fn json(value: Value) -> Result<String, minijinja::Error> {
    serde_json::to_string_pretty(&value)
        .map_err(|e| minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e.to_string()))
}
