//! JSON Schemas of the kinds (draft 2020-12), generated from the same types the checks read, so
//! that a schema cannot drift from what a node accepts. The checks go further than a schema can
//! (a polygon that crosses itself, a signal group not in the code, an end before a start); the
//! schema's description says so.

use serde_json::{json, Map, Value};
use utoipa::openapi::{RefOr, Schema};
use utoipa::ToSchema;

use crate::kinds::*;

/// The examples in `docs/examples/`, by file name without `.json`, compiled in: each schema
/// carries its kind's as `examples`, and the tests and fuzz seeds read them here.
pub const EXAMPLES: [(&str, &str); 7] = [
    ("encounter-at-sea", include_str!("../../../docs/examples/encounter-at-sea.json")),
    ("air-encounter", include_str!("../../../docs/examples/air-encounter.json")),
    ("disaster-relief-request", include_str!("../../../docs/examples/disaster-relief-request.json")),
    ("disaster-relief-offer", include_str!("../../../docs/examples/disaster-relief-offer.json")),
    ("military-activity", include_str!("../../../docs/examples/military-activity.json")),
    ("call-request", include_str!("../../../docs/examples/call-request.json")),
    ("call-answer", include_str!("../../../docs/examples/call-answer.json")),
];

/// The example of that name, as JSON.
pub fn example(name: &str) -> Option<Value> {
    EXAMPLES.iter().find(|(n, _)| *n == name).and_then(|(_, text)| serde_json::from_str(text).ok())
}

fn examples(kind: &str) -> Vec<Value> {
    EXAMPLES
        .iter()
        .filter_map(|(_, text)| serde_json::from_str::<Value>(text).ok())
        .filter(|v| v["kind"] == kind)
        .collect()
}

fn document<T: ToSchema>(kind: &str, title: &str) -> Value {
    let mut deps: Vec<(String, RefOr<Schema>)> = Vec::new();
    T::schemas(&mut deps);
    let mut defs = Map::new();
    for (name, schema) in deps {
        defs.insert(name, serde_json::to_value(schema).unwrap_or(Value::Null));
    }
    let mut root = serde_json::to_value(T::schema()).unwrap_or(Value::Null);
    if let Value::Object(obj) = &mut root {
        let props = obj.entry("properties").or_insert_with(|| json!({}));
        if let Value::Object(p) = props {
            let mut with_kind = Map::new();
            with_kind.insert("kind".into(), json!({"const": kind}));
            with_kind.extend(std::mem::take(p));
            *p = with_kind;
            if let Some(Value::Object(v)) = p.get_mut("v") {
                v.insert("const".into(), json!(FORM_VERSION));
            }
        }
        if let Some(Value::Array(req)) = obj.get_mut("required") {
            req.insert(0, json!("kind"));
        }
        obj.insert("$schema".into(), json!("https://json-schema.org/draft/2020-12/schema"));
        obj.insert("$id".into(), json!(format!("adi:form:{kind}:v{FORM_VERSION}")));
        obj.insert("title".into(), json!(title));
        obj.insert("additionalProperties".into(), json!(false));
        obj.insert("examples".into(), Value::Array(examples(kind)));
        if !defs.is_empty() {
            obj.insert("$defs".into(), Value::Object(defs));
        }
    }
    let mut text = serde_json::to_string(&root).unwrap_or_default();
    text = text.replace("#/components/schemas/", "#/$defs/");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Every kind's JSON Schema, by kind, and the working-group tags.
pub fn schemas() -> Value {
    let mut out = Map::new();
    out.insert("encounter-at-sea".into(), document::<SeaEncounter>("encounter-at-sea", "Encounter at sea (CUES)"));
    out.insert("air-encounter".into(), document::<AirEncounter>("air-encounter", "Air encounter"));
    out.insert("disaster-relief".into(), document::<DisasterRelief>("disaster-relief", "Disaster relief"));
    out.insert(
        "military-activity".into(),
        document::<ActivityNotice>("military-activity", "Notice of major military activity"),
    );
    out.insert("call-request".into(), document::<CallRequest>("call-request", "Request for a call"));
    out.insert("call-answer".into(), document::<CallAnswer>("call-answer", "Answer to a call request"));
    debug_assert!(KINDS.iter().all(|k| out.contains_key(*k)));
    json!({
        "version": FORM_VERSION,
        "note": "A node checks more than these schemas say: positions on the globe, courses of 0 to 360 degrees, \
                 signal groups known to the code cited, polygons that do not cross themselves, periods that end \
                 after they start, and names that refer to units in the report. Every refusal names the field.",
        "kinds": out,
        "working_groups": WorkingGroup::ALL.iter().map(|g| json!({"tag": g.as_str(), "title": g.title()})).collect::<Vec<_>>(),
    })
}
