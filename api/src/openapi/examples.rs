//! An example for every answer the document describes without one, made
//! from its schema: the fields' own examples, defaults and first enum
//! values where the annotations give them, else a value of the field's
//! type and format. Handlers annotate examples where a realistic one says
//! more (the compatible routes, the job result); the rest would otherwise
//! show nothing in the docs page's "Example Value".

use serde_json::{json, Map, Value};

/// `$ref`s followed before a schema counts as too deep (recursive types).
const MAX_DEPTH: usize = 8;

/// Adds an example to each operation's successful JSON answers that lack
/// one.
pub fn fill(document: &mut Value) {
    let schemas = document["components"]["schemas"].clone();
    let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for item in paths.values_mut().filter_map(Value::as_object_mut) {
        for operation in item.values_mut().filter_map(Value::as_object_mut) {
            let Some(answers) = operation
                .get_mut("responses")
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            for (status, answer) in answers.iter_mut() {
                if !status.starts_with('2') {
                    continue;
                }
                let Some(content) = answer.get_mut("content").and_then(Value::as_object_mut) else {
                    continue;
                };
                for (media, body) in content.iter_mut() {
                    let Some(body) = body.as_object_mut() else {
                        continue;
                    };
                    if body.contains_key("example") || body.contains_key("examples") {
                        continue;
                    }
                    if !media.contains("json") && media != "text/event-stream" {
                        continue;
                    }
                    if let Some(schema) = body.get("schema") {
                        let example = of(schema, &schemas, 0);
                        body.insert("example".into(), example);
                    }
                }
            }
        }
    }
}

/// An example value for `schema`.
fn of(schema: &Value, schemas: &Value, depth: usize) -> Value {
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    for key in ["example", "default"] {
        if let Some(value) = schema.get(key) {
            return value.clone();
        }
    }
    if let Some(first) = schema
        .get("examples")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    if let Some(name) = schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
    {
        return of(&schemas[name], schemas, depth + 1);
    }
    if let Some(parts) = schema.get("allOf").and_then(Value::as_array) {
        let mut merged = Map::new();
        for part in parts {
            if let Value::Object(fields) = of(part, schemas, depth + 1) {
                merged.extend(fields);
            }
        }
        return Value::Object(merged);
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(choices) = schema.get(key).and_then(Value::as_array) {
            // The first choice that is not `null` (an optional field).
            let choice = choices
                .iter()
                .find(|c| c.get("type") != Some(&json!("null")))
                .or_else(|| choices.first());
            return choice.map_or(Value::Null, |c| of(c, schemas, depth + 1));
        }
    }
    let kind = match schema.get("type") {
        Some(Value::String(kind)) => kind.as_str(),
        // OpenAPI 3.1's `["string", "null"]`: the type that is not null.
        Some(Value::Array(kinds)) => kinds
            .iter()
            .filter_map(Value::as_str)
            .find(|k| *k != "null")
            .unwrap_or("null"),
        _ if schema.get("properties").is_some() => "object",
        _ => "",
    };
    match kind {
        "object" => {
            let mut fields = Map::new();
            if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
                for (name, property) in properties {
                    fields.insert(name.clone(), of(property, schemas, depth + 1));
                }
            }
            Value::Object(fields)
        }
        "array" => match schema.get("items") {
            Some(items) => json!([of(items, schemas, depth + 1)]),
            None => json!([]),
        },
        "string" => json!(string(schema.get("format").and_then(Value::as_str))),
        "integer" => json!(schema
            .get("minimum")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            .max(0)),
        "number" => json!(0.0),
        "boolean" => json!(false),
        _ => Value::Null,
    }
}

/// A string of the given format.
fn string(format: Option<&str>) -> &'static str {
    match format {
        Some("uuid") => "0193f0c2-7b1e-7d3a-9c41-2f6d8e5a1b07",
        Some("date-time") => "2026-01-31T12:00:00Z",
        Some("date") => "2026-01-31",
        Some("uri") => "https://example.com/hooks/voxq",
        Some("email") => "ada@example.com",
        _ => "string",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_follow_references_field_examples_and_formats() {
        let mut document = json!({
            "components": {"schemas": {
                "Job": {"type": "object", "properties": {
                    "id": {"type": "string", "format": "uuid"},
                    "status": {"type": "string", "enum": ["queued", "running"]},
                    "note": {"type": ["string", "null"], "example": "hi"},
                    "child": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/Job"}]},
                }},
            }},
            "paths": {"/j": {"get": {"responses": {
                "200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Job"}}}},
                "201": {"content": {"application/json": {"schema": {"type": "integer"}, "example": 7}}},
                "404": {"content": {"application/json": {"schema": {"type": "integer"}}}},
            }}}},
        });
        fill(&mut document);
        let answers = &document["paths"]["/j"]["get"]["responses"];
        let example = &answers["200"]["content"]["application/json"]["example"];
        assert_eq!(example["status"], "queued");
        assert_eq!(example["note"], "hi");
        assert_eq!(example["id"], "0193f0c2-7b1e-7d3a-9c41-2f6d8e5a1b07");
        assert_eq!(example["child"]["status"], "queued");
        assert_eq!(answers["201"]["content"]["application/json"]["example"], 7);
        assert!(answers["404"]["content"]["application/json"]
            .get("example")
            .is_none());
    }
}
