//! The forms against the examples in `docs/examples/`: each checks, round-trips, renders and
//! matches its schema; each kind of bad input is refused with the field named.

use adi_forms::schema::EXAMPLES;
use adi_forms::{check, render, schemas, summary, Form, FormError};
use serde_json::{json, Value};

fn example(name: &str) -> Value {
    adi_forms::schema::example(name).unwrap()
}

/// The names of the examples in `docs/examples/`.
fn names() -> impl Iterator<Item = &'static str> {
    EXAMPLES.iter().map(|(name, _)| *name)
}

fn refused(mut value: Value, edit: impl FnOnce(&mut Value)) -> FormError {
    edit(&mut value);
    check(&value).expect_err("the form should be refused")
}

#[test]
fn every_example_checks_and_round_trips_unchanged() {
    for name in names() {
        let value = example(name);
        let form = check(&value).unwrap_or_else(|e| panic!("{name}: {e}"));
        let again = check(&form.to_value()).unwrap();
        assert_eq!(again, form, "{name}");
        assert_eq!(again.to_value(), form.to_value(), "{name}");
        assert!(name.starts_with(form.kind()), "{name} is {}", form.kind());
        let text = render(&form);
        assert!(text.lines().count() >= 2, "{name}: {text}");
        assert!(!summary(&form).is_empty());
    }
}

#[test]
fn signal_meanings_are_filled_in_from_the_code_and_a_wrong_one_is_refused() {
    let Form::EncounterAtSea(f) = check(&example("encounter-at-sea")).unwrap() else { panic!("not a sea encounter") };
    assert_eq!(f.signals[0].meaning.as_deref(), Some("I wish to communicate with you."));
    assert_eq!(f.signals[1].meaning.as_deref(), Some("I am altering my course to starboard."));
    let e = refused(example("encounter-at-sea"), |v| {
        v["signals"][1]["meaning"] = json!("I am altering my course to port.")
    });
    assert_eq!(e.field, "signals[1].meaning");
}

#[test]
fn the_rendering_shows_what_an_officer_needs() {
    let text = render(&check(&example("encounter-at-sea")).unwrap());
    for want in [
        "BRP Jose Rizal (FF-150, DZJR), frigate",
        "14°30.00'N 119°30.00'E, course 000°, speed 12.0 kn",
        "Harbour Patrol 21",
        "ICS K \"I wish to communicate with you.\"",
        "0.80 nm at 2026-11-30T03:40:00Z",
        "crossing-give-way (confirmed by the reporting officer)",
        "voluntary report of an unplanned encounter",
    ] {
        assert!(text.contains(want), "missing '{want}' in:\n{text}");
    }
    let mut negative_zero = example("encounter-at-sea");
    negative_zero["reporting_unit"]["course_deg"] = json!(-0.0);
    let text = render(&check(&negative_zero).unwrap());
    assert!(text.contains("course 000°"), "{text}");
    let text = render(&check(&example("disaster-relief-request")).unwrap());
    assert!(text.contains("REQUEST FOR ASSISTANCE"), "{text}");
    assert!(text.contains("airlift: Tactical airlift into Tacloban airport (4 sorties a day for 7 days)"), "{text}");
    let text = render(&check(&example("military-activity")).unwrap());
    assert!(text.contains("a circle of 40.0 nm about 7°30.00'N 113°00.00'E"), "{text}");
}

// The bad inputs the issue names, one test each.

#[test]
fn a_position_off_the_globe_is_refused_with_the_field_named() {
    let e = refused(example("encounter-at-sea"), |v| v["other_units"][0]["position"]["lat"] = json!(91.5));
    assert_eq!(e.field, "other_units[0].position.lat");
    assert!(e.message.contains("off the globe"), "{e}");
    let e = refused(example("air-encounter"), |v| v["reporting_aircraft"]["position"]["lon"] = json!(-180.5));
    assert_eq!(e.field, "reporting_aircraft.position.lon");
}

#[test]
fn a_course_over_360_degrees_is_refused_with_the_field_named() {
    let e = refused(example("encounter-at-sea"), |v| v["reporting_unit"]["course_deg"] = json!(361));
    assert_eq!(e.field, "reporting_unit.course_deg");
    assert!(e.message.contains("0 to 360"), "{e}");
    let e = refused(example("encounter-at-sea"), |v| v["reporting_unit"]["course_deg"] = json!(-5));
    assert_eq!(e.field, "reporting_unit.course_deg");
    // 360 is north, as many officers write it.
    let mut ok = example("encounter-at-sea");
    ok["reporting_unit"]["course_deg"] = json!(360);
    check(&ok).unwrap();
}

#[test]
fn an_unknown_signal_group_is_refused_with_the_field_named() {
    let e = refused(example("encounter-at-sea"), |v| v["signals"][0]["group"] = json!("QQX"));
    assert_eq!(e.field, "signals[0].group");
    assert!(e.message.contains("'QQX' is not a signal group"), "{e}");
    let e = refused(example("encounter-at-sea"), |v| v["signals"][0]["source"] = json!("MYCODE"));
    assert_eq!(e.field, "signals[0].source");
}

#[test]
fn a_missing_required_field_is_refused_with_the_field_named() {
    let e = refused(example("encounter-at-sea"), |v| {
        v["reporting_unit"].as_object_mut().unwrap().remove("speed_kn");
    });
    assert_eq!(e.field, "reporting_unit.speed_kn");
    assert!(e.message.contains("required"), "{e}");
    let e = refused(example("disaster-relief-request"), |v| {
        v.as_object_mut().unwrap().remove("contacts");
    });
    assert_eq!(e.field, "contacts");
    let e = refused(example("encounter-at-sea"), |v| {
        v.as_object_mut().unwrap().remove("kind");
    });
    assert_eq!(e.field, "kind");
}

#[test]
fn a_polygon_that_crosses_itself_is_refused_with_the_field_named() {
    let e = refused(example("disaster-relief-request"), |v| {
        // Swap two corners: the square becomes a bow tie.
        let p = v["affected_area"]["polygon"].as_array_mut().unwrap();
        p.swap(1, 2);
    });
    assert_eq!(e.field, "affected_area.polygon");
    assert!(e.message.contains("crosses itself"), "{e}");
    let e = refused(example("military-activity"), |v| {
        v["area"] = json!({"polygon": [{"lat": 0, "lon": 0}, {"lat": 1, "lon": 1}, {"lat": 0, "lon": 1}, {"lat": 1, "lon": 0}]});
    });
    assert_eq!(e.field, "area.polygon");
}

#[test]
fn other_bad_input_is_refused_with_the_field_named() {
    type Edit = Box<dyn FnOnce(&mut Value)>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        ("encounter-at-sea", Box::new(|v| v["voluntary"] = json!(false)), "voluntary"),
        ("encounter-at-sea", Box::new(|v| v["unplanned"] = json!(false)), "unplanned"),
        ("encounter-at-sea", Box::new(|v| v["time_utc"] = json!("30/11/2026 03:12")), "time_utc"),
        ("encounter-at-sea", Box::new(|v| v["time_utc"] = json!("2026-02-30T03:12:00Z")), "time_utc"),
        ("encounter-at-sea", Box::new(|v| v["time_utc"] = json!("2026-1é-30T03:12Z")), "time_utc"),
        ("encounter-at-sea", Box::new(|v| v["other_units"] = json!([])), "other_units"),
        ("encounter-at-sea", Box::new(|v| v["intentions"][0]["unit"] = json!("HMS Nobody")), "intentions[0].unit"),
        ("encounter-at-sea", Box::new(|v| v["reporting_unit"]["speed_kn"] = json!(250)), "reporting_unit.speed_kn"),
        ("encounter-at-sea", Box::new(|v| v["reporting_unit"]["name"] = json!("  ")), "reporting_unit.name"),
        ("encounter-at-sea", Box::new(|v| v["reporting_unit"]["colour"] = json!("grey")), "reporting_unit.colour"),
        ("encounter-at-sea", Box::new(|v| v["situation"] = json!("sideways")), "situation"),
        ("encounter-at-sea", Box::new(|v| v["v"] = json!(2)), "v"),
        ("encounter-at-sea", Box::new(|v| v["kind"] = json!("encounter-on-land")), "kind"),
        (
            "air-encounter",
            Box::new(|v| v["reporting_aircraft"]["altitude_ft"] = json!(150000)),
            "reporting_aircraft.altitude_ft",
        ),
        ("air-encounter", Box::new(|v| v["communications"][0]["by"] = json!("GHOST 1")), "communications[0].by"),
        ("disaster-relief-request", Box::new(|v| v["needs"] = json!([])), "needs"),
        ("disaster-relief-request", Box::new(|v| v["stage"] = json!("panic")), "stage"),
        ("disaster-relief-request", Box::new(|v| v["needs"][0]["category"] = json!("magic")), "needs[0].category"),
        ("disaster-relief-offer", Box::new(|v| v["capabilities"] = json!([])), "capabilities"),
        (
            "disaster-relief-offer",
            Box::new(|v| {
                v["contacts"][0].as_object_mut().unwrap().remove("email");
            }),
            "contacts[0]",
        ),
        ("military-activity", Box::new(|v| v["end_utc"] = json!("2026-12-01T00:00:00Z")), "end_utc"),
        ("military-activity", Box::new(|v| v["area"]["circle"]["radius_nm"] = json!(0)), "area.circle.radius_nm"),
        (
            "military-activity",
            Box::new(|v| v["area"] = json!({"polygon": [{"lat": 0, "lon": 0}, {"lat": 1, "lon": 1}]})),
            "area.polygon",
        ),
        ("call-request", Box::new(|v| v["proposed_utc"] = json!([])), "proposed_utc"),
        ("call-request", Box::new(|v| v["proposed_utc"][1] = json!("tomorrow")), "proposed_utc[1]"),
        ("call-answer", Box::new(|v| v["request"] = json!("abc")), "request"),
        (
            "call-answer",
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("reason");
            }),
            "reason",
        ),
        ("call-answer", Box::new(|v| v["answer"] = json!("accept")), "time_utc"),
    ];
    for (name, edit, field) in cases {
        let e = refused(example(name), edit);
        assert_eq!(e.field, field, "{name}: {e}");
        assert!(!e.message.is_empty());
    }
    assert_eq!(check(&json!([1, 2])).unwrap_err().field, "");
    let big =
        json!({"kind": "call-request", "v": 1, "subject": "x".repeat(40_000), "proposed_utc": ["2026-11-30T08:00Z"]});
    assert!(check(&big).unwrap_err().message.contains("at most"));
}

#[test]
fn each_schema_names_as_required_exactly_the_fields_the_checks_require() {
    let all = schemas();
    let kinds = all["kinds"].as_object().unwrap();
    assert_eq!(kinds.len(), adi_forms::KINDS.len());
    for name in names() {
        let value = example(name);
        let kind = value["kind"].as_str().unwrap();
        let schema = &kinds[kind];
        assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
        assert_eq!(schema["properties"]["kind"]["const"], kind);
        let required: Vec<&str> = schema["required"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
        for key in value.as_object().unwrap().keys() {
            assert!(schema["properties"].get(key).is_some(), "{kind}: schema lacks {key}");
            let mut without = value.clone();
            without.as_object_mut().unwrap().remove(key);
            let missing =
                check(&without).err().is_some_and(|e| e.field == *key && e.message.contains("is required and missing"));
            assert_eq!(
                missing,
                required.contains(&key.as_str()),
                "{kind}.{key}: required in the schema {}",
                required.contains(&key.as_str())
            );
        }
        // Every $ref resolves inside the document.
        let text = schema.to_string();
        for r in text.split("\"$ref\":\"#/$defs/").skip(1) {
            let name = r.split('"').next().unwrap();
            assert!(schema["$defs"].get(name).is_some(), "{kind}: dangling $ref {name}");
        }
    }
    assert_eq!(all["working_groups"].as_array().unwrap().len(), 7);
    // Each schema carries its kind's examples from docs/examples/, and each checks.
    let mut count = 0;
    for (kind, schema) in kinds {
        for e in schema["examples"].as_array().unwrap() {
            assert_eq!(e["kind"], kind.as_str());
            check(e).unwrap_or_else(|err| panic!("{kind}: {err}"));
            count += 1;
        }
    }
    assert_eq!(count, EXAMPLES.len());
}

/// Every place in a value, as JSON pointers.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                pointers(x, format!("{at}/{k}"), out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                pointers(x, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

#[test]
fn any_value_anywhere_in_a_report_is_refused_or_accepted_without_a_panic() {
    // What a peer might put in any field: every JSON type, extremes, and odd text.
    let odd = [
        json!(null),
        json!(true),
        json!(-1.0e308),
        json!(1.0e308),
        json!(-0.0),
        json!(u64::MAX),
        json!(""),
        json!("Z".repeat(9000)),
        json!("é2026-11-30T03:12Zé"),
        json!("2026-11-30T03:12:00Z"),
        json!([]),
        json!([{"lat": 0, "lon": 0}]),
        json!({}),
        json!({"polygon": []}),
    ];
    let mut tried = 0;
    for name in names() {
        let value = example(name);
        let mut places = Vec::new();
        pointers(&value, String::new(), &mut places);
        for place in places.iter().filter(|p| !p.is_empty()) {
            let mut variants: Vec<Value> = odd
                .iter()
                .map(|x| {
                    let mut v = value.clone();
                    *v.pointer_mut(place).unwrap() = x.clone();
                    v
                })
                .collect();
            // And the field left out.
            let (parent, key) = place.rsplit_once('/').unwrap();
            let mut without = value.clone();
            match without.pointer_mut(parent) {
                Some(Value::Object(m)) => {
                    m.remove(key);
                }
                Some(Value::Array(a)) => {
                    a.remove(key.parse::<usize>().unwrap());
                }
                _ => {}
            }
            variants.push(without);
            for v in variants {
                tried += 1;
                match check(&v) {
                    Err(e) => assert!(!e.message.is_empty(), "{name} {place}: an error without a message"),
                    Ok(form) => {
                        // What passes checks to itself, renders and computes.
                        assert_eq!(check(&form.to_value()).unwrap(), form, "{name} {place}");
                        assert!(!render(&form).is_empty());
                        let _ = adi_forms::approaches(&form);
                    }
                }
            }
        }
    }
    assert!(tried > 2000, "{tried}");
}
