//! `--config FILE.toml`: a TOML file of flag values, read into `--flag=value` arguments that go
//! under the command line's own.

use std::path::Path;

/// Reads a TOML config file into `--flag=value` arguments, refusing keys that are not among
/// `flags` (the command's long flag names, without the dashes).
pub(super) fn config_file_args(path: &Path, flags: &[&str]) -> Result<Vec<String>, String> {
    let where_ = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("--config {where_}: {e}"))?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        format!("--config {where_}: not valid TOML: {}", e.message())
    })?;
    let mut out = Vec::new();
    for (key, value) in table {
        if !flags.contains(&key.as_str()) || key == "config" {
            return Err(format!("--config {where_}: unknown key '{key}' (keys are flag names, like lr or batch-size)"));
        }
        let text = match value {
            toml::Value::Boolean(true) => {
                out.push(format!("--{key}"));
                continue;
            }
            toml::Value::Boolean(false) => continue,
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Array(items) => items
                .iter()
                .map(|v| match v {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(","),
            other => {
                return Err(format!(
                    "--config {where_}: key '{key}' has an unsupported value {other}"
                ))
            }
        };
        out.push(format!("--{key}={text}"));
    }
    Ok(out)
}
