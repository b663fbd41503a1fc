//! Compose's variable interpolation and its dotenv syntax, for the files `init` imports.

use std::path::Path;

use indexmap::IndexMap;
use serde_yaml_ng::Value;

use crate::init::{Error, Result, Unmapped};

/// Every string of `value` interpolated: `$VAR`, `${VAR}`, `${VAR:-default}` (unset or empty),
/// `${VAR-default}` (unset), `${VAR:?message}` / `${VAR?message}` (an error), `${VAR:+other}` /
/// `${VAR+other}`, `$$` for a `$`; defaults are interpolated too. An unset variable without a
/// default is empty, as in compose, and noted.
pub(crate) fn value(
    value: Value,
    variables: &IndexMap<String, String>,
    file: &Path,
    notes: &mut Vec<Unmapped>,
) -> Result<Value> {
    Ok(match value {
        Value::String(text) => Value::String(string(&text, variables, file, notes)?),
        Value::Sequence(list) => {
            Value::Sequence(list.into_iter().map(|v| self::value(v, variables, file, notes)).collect::<Result<_>>()?)
        }
        Value::Mapping(map) => Value::Mapping(
            map.into_iter().map(|(k, v)| Ok((k, self::value(v, variables, file, notes)?))).collect::<Result<_>>()?,
        ),
        Value::Tagged(mut tagged) => {
            tagged.value = self::value(tagged.value, variables, file, notes)?;
            Value::Tagged(tagged)
        }
        other => other,
    })
}

/// One string interpolated.
pub(crate) fn string(
    text: &str,
    variables: &IndexMap<String, String>,
    file: &Path,
    notes: &mut Vec<Unmapped>,
) -> Result<String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('{') {
            // The closing brace of this expression: defaults may hold `${…}` of their own.
            let mut depth = 1;
            let mut end = None;
            for (i, c) in inner.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = Some(i);
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let Some(end) = end else {
                return Err(Error::Compose {
                    path: file.to_path_buf(),
                    problem: format!("`${{` is never closed in `{text}`"),
                });
            };
            out.push_str(&expression(&inner[..end], variables, file, notes)?);
            rest = &inner[end + 1..];
        } else {
            let name_len = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
            if name_len == 0 || after.starts_with(|c: char| c.is_ascii_digit()) {
                out.push('$');
                rest = after;
            } else {
                out.push_str(&lookup(&after[..name_len], variables, file, notes));
                rest = &after[name_len..];
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn expression(
    inner: &str,
    variables: &IndexMap<String, String>,
    file: &Path,
    notes: &mut Vec<Unmapped>,
) -> Result<String> {
    let name_len = inner.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(inner.len());
    let (name, operation) = inner.split_at(name_len);
    let value = variables.get(name);
    let set_and_not_empty = value.is_some_and(|v| !v.is_empty());
    let word = |w: &str, notes: &mut Vec<Unmapped>| string(w, variables, file, notes);
    for (op, colon) in [(":-", true), ("-", false), (":?", true), ("?", false), (":+", true), ("+", false)] {
        let Some(word_text) = operation.strip_prefix(op) else { continue };
        let present = if colon { set_and_not_empty } else { value.is_some() };
        return match op.trim_start_matches(':') {
            "-" if present => Ok(value.cloned().unwrap_or_default()),
            "-" => word(word_text, notes),
            "?" if present => Ok(value.cloned().unwrap_or_default()),
            "?" => Err(Error::Compose {
                path: file.to_path_buf(),
                problem: format!("required variable {name} is missing a value: {}", word(word_text, notes)?),
            }),
            _ if present => word(word_text, notes),
            _ => Ok(String::new()),
        };
    }
    if !operation.is_empty() || name.is_empty() {
        return Err(Error::Compose {
            path: file.to_path_buf(),
            problem: format!("`${{{inner}}}` is not an interpolation compose reads"),
        });
    }
    Ok(lookup(name, variables, file, notes))
}

fn lookup(name: &str, variables: &IndexMap<String, String>, file: &Path, notes: &mut Vec<Unmapped>) -> String {
    match variables.get(name) {
        Some(value) => value.clone(),
        None => {
            let note = Unmapped {
                what: format!("{}: ${{{name}}}", file.display()),
                why: "the variable is not set: an empty string is used, as compose does".into(),
                profile: None,
            };
            if !notes.contains(&note) {
                notes.push(note);
            }
            String::new()
        }
    }
}

/// The variables of a dotenv file as compose reads them: `KEY=value`, `export KEY=value`,
/// comments, single quotes (literal), double quotes (`\n`, `\"` and `\\` escapes), a ` #`
/// comment after an unquoted value.
pub(crate) fn dotenv(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else { continue };
        let (key, value) = (key.trim(), value.trim());
        let value = if let Some(quoted) = value.strip_prefix('\'') {
            quoted.split_once('\'').map_or(quoted, |(v, _)| v).to_owned()
        } else if let Some(quoted) = value.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = quoted.chars();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => match chars.next() {
                        Some('n') => v.push('\n'),
                        Some(other) => v.push(other),
                        None => {}
                    },
                    c => v.push(c),
                }
            }
            v
        } else {
            value.split_once(" #").map_or(value, |(v, _)| v).trim_end().to_owned()
        };
        out.push((key.to_owned(), value));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: &str) {
        let variables: IndexMap<String, String> =
            [("SET", "value"), ("EMPTY", "")].into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        assert_eq!(string(text, &variables, Path::new("compose.yaml"), &mut Vec::new()).unwrap(), expected, "{text}");
    }

    #[test]
    fn interpolation_reads_compose_forms() {
        check("a-$SET-b", "a-value-b");
        check("${SET}", "value");
        check("${UNSET:-fallback}", "fallback");
        check("${EMPTY:-fallback}", "fallback");
        check("${EMPTY-fallback}", "");
        check("${UNSET-${SET}}", "value");
        check("${SET:+other}", "other");
        check("${UNSET:+other}", "");
        check("$$SET", "$SET");
        check("${UNSET}", "");
        check("cost: 5$", "cost: 5$");
    }

    #[test]
    fn a_required_variable_that_is_unset_is_an_error() {
        let error = string("${UNSET:?set it}", &IndexMap::new(), Path::new("c.yaml"), &mut Vec::new()).unwrap_err();
        assert_eq!(error.to_string(), "c.yaml: required variable UNSET is missing a value: set it");
    }

    #[test]
    fn dotenv_reads_quotes_and_comments() {
        let vars = dotenv("# c\nA=1\nexport B='x y'\nC=\"q\\\"d\"\nD=v # note\n");
        assert_eq!(vars, [("A", "1"), ("B", "x y"), ("C", "q\"d"), ("D", "v")].map(|(k, v)| (k.into(), v.into())));
    }
}
