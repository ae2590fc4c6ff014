//! Option specifications read from an options type's JSON schema (names,
//! kinds, defaults, docs), and option values from text as a command line
//! or a form gives them.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::model::roster::Shift;
use crate::util::error::{Error, Result};

/// The kind of an option's value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "of")]
pub enum OptionKind {
    /// `true` or `false`.
    Bool,
    /// A whole number.
    Integer,
    /// A number.
    Number,
    /// Text (dates and times in the dataset's timezone, names, codes).
    Text,
    /// One of these values.
    Choice(Vec<String>),
    /// A list of values of a kind (comma-separated on a command line).
    List(Box<OptionKind>),
    /// Names with a number each (`NAME=VALUE` on a command line).
    Map,
    /// A structure (JSON on a command line, a table in a job file).
    Json,
}

/// One option of an analysis.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OptionSpec {
    /// The name, as in job files, JSON options and Python keywords.
    pub name: String,
    /// The kind of value.
    pub kind: OptionKind,
    /// The default value (`null`: none, the analysis decides).
    pub default: Value,
    /// What it does.
    pub doc: String,
}

/// The options of a schema, by name.
pub(crate) fn specs(schema: &schemars::Schema) -> Vec<OptionSpec> {
    let root = schema.as_value();
    let defs = root.get("$defs").and_then(Value::as_object);
    let Some(props) = root.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    props
        .iter()
        .map(|(name, p)| OptionSpec {
            name: name.clone(),
            kind: kind_of(p, defs),
            default: p.get("default").cloned().unwrap_or(Value::Null),
            doc: p
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
        })
        .collect()
}

/// Follow a `$ref` into the definitions.
fn resolve<'a>(p: &'a Value, defs: Option<&'a Map<String, Value>>) -> &'a Value {
    match p.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .rsplit('/')
            .next()
            .and_then(|n| defs.and_then(|d| d.get(n)))
            .unwrap_or(p),
        None => p,
    }
}

fn kind_of(p: &Value, defs: Option<&Map<String, Value>>) -> OptionKind {
    // An optional value: `anyOf` of the value and null.
    if let Some(any) = p.get("anyOf").and_then(Value::as_array) {
        let not_null: Vec<&Value> = any
            .iter()
            .filter(|v| v.get("type").and_then(Value::as_str) != Some("null"))
            .collect();
        if let [one] = not_null.as_slice() {
            return kind_of(one, defs);
        }
        return OptionKind::Json;
    }
    let p = resolve(p, defs);
    if let Some(values) = p.get("enum").and_then(Value::as_array) {
        return OptionKind::Choice(
            values
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
        );
    }
    if let Some(one_of) = p.get("oneOf").and_then(Value::as_array) {
        let consts: Vec<String> = one_of
            .iter()
            .flat_map(|v| {
                let v = resolve(v, defs);
                match (v.get("const"), v.get("enum")) {
                    (Some(Value::String(s)), _) => vec![s.clone()],
                    (_, Some(Value::Array(a))) => a
                        .iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect(),
                    _ => vec![],
                }
            })
            .collect();
        if !consts.is_empty() {
            return OptionKind::Choice(consts);
        }
        return OptionKind::Json;
    }
    let ty = match p.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ => "",
    };
    match ty {
        "boolean" => OptionKind::Bool,
        "integer" => OptionKind::Integer,
        "number" => OptionKind::Number,
        "string" => OptionKind::Text,
        "array" => match p.get("items") {
            Some(items) if items.is_object() => OptionKind::List(Box::new(kind_of(items, defs))),
            _ => OptionKind::Json,
        },
        "object"
            if p.get("properties").is_none()
                && p.get("additionalProperties")
                    .and_then(|a| a.get("type"))
                    .and_then(Value::as_str)
                    == Some("number") =>
        {
            OptionKind::Map
        }
        _ => OptionKind::Json,
    }
}

/// An option's value from text, as a command line gives it: `true`/`false`,
/// numbers, comma-separated lists, `NAME=VALUE` map entries, JSON for
/// structures, `NAME=HH:MM-HH:MM[*HEADCOUNT]` for a shift. Errors name the
/// option and the value.
pub fn option_value(spec: &OptionSpec, text: &str) -> Result<Value> {
    value_of(&spec.name, &spec.kind, text)
}

fn value_of(name: &str, kind: &OptionKind, text: &str) -> Result<Value> {
    let bad = |what: &str| Error::option(name, format!("`{text}` is not {what}"));
    let t = text.trim();
    Ok(match kind {
        OptionKind::Bool => match t {
            "true" | "yes" | "1" => Value::Bool(true),
            "false" | "no" | "0" => Value::Bool(false),
            _ => return Err(bad("true or false")),
        },
        OptionKind::Integer => Value::from(t.parse::<i64>().map_err(|_| bad("a whole number"))?),
        OptionKind::Number => {
            let v: f64 = t.parse().map_err(|_| bad("a number"))?;
            serde_json::Number::from_f64(v)
                .map(Value::Number)
                .ok_or_else(|| bad("a finite number"))?
        }
        OptionKind::Text => Value::String(t.to_string()),
        OptionKind::Choice(values) => {
            let v = t.replace('-', "_");
            if !values.contains(&v) {
                return Err(Error::option(
                    name,
                    format!("`{text}` is not one of {}", values.join(", ")),
                ));
            }
            Value::String(v)
        }
        OptionKind::List(inner) => Value::Array(
            t.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| value_of(name, inner, s))
                .collect::<Result<_>>()?,
        ),
        OptionKind::Map => {
            let mut m = Map::new();
            for entry in t.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let (k, v) = entry.split_once('=').ok_or_else(|| bad("NAME=VALUE"))?;
                m.insert(
                    k.trim().to_string(),
                    value_of(name, &OptionKind::Number, v)?,
                );
            }
            Value::Object(m)
        }
        OptionKind::Json if name == "shifts" && !t.starts_with(['{', '[']) => {
            serde_json::to_value(t.parse::<Shift>()?).map_err(|e| bad(&e.to_string()))?
        }
        OptionKind::Json => serde_json::from_str(t)
            .map_err(|e| Error::option(name, format!("`{text}` is not valid JSON: {e}")))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, kind: OptionKind) -> OptionSpec {
        OptionSpec {
            name: name.into(),
            kind,
            default: Value::Null,
            doc: String::new(),
        }
    }

    #[test]
    fn values_from_text() {
        let list = OptionKind::List(Box::new(OptionKind::Choice(vec![
            "incidents".into(),
            "hazards".into(),
        ])));
        assert_eq!(
            option_value(&spec("kinds", list.clone()), "incidents, hazards").unwrap(),
            serde_json::json!(["incidents", "hazards"])
        );
        let e = option_value(&spec("kinds", list), "incidents,fires").unwrap_err();
        assert!(
            e.to_string()
                .contains("`fires` is not one of incidents, hazards"),
            "{e}"
        );
        assert_eq!(
            option_value(&spec("thresholds", OptionKind::Map), "co=35,h2s=10.5").unwrap(),
            serde_json::json!({"co": 35.0, "h2s": 10.5})
        );
        assert_eq!(
            option_value(&spec("alpha", OptionKind::Number), "0.01").unwrap(),
            serde_json::json!(0.01)
        );
        assert!(option_value(&spec("alpha", OptionKind::Number), "NaN").is_err());
        assert_eq!(
            option_value(
                &spec("by", OptionKind::Choice(vec!["hour_weekday".into()])),
                "hour-weekday"
            )
            .unwrap(),
            serde_json::json!("hour_weekday")
        );
    }
}
