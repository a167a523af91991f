//! Every request body the client can build must match OpenAI's published wire format:
//! `components.schemas.CreateImageRequest` of `shared/contracts/openai-images.openapi.json`,
//! checked with a draft 2020-12 JSON-schema validator (`nullable: true` read as "null allowed").
//!
//! The schema is permissive (`model` and `size` take any string, and unknown keys are allowed), so
//! the per-model rules are checked here too: a body never carries a field its model does not take.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use easel::api::request::{GenerationParams, ProviderRules, ValidationError, check};
use easel::catalog::{Catalog, Field, ModelSpec};
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use std::cell::Cell;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::OnceLock;

const CONTRACT: &str = "shared/contracts/openai-images.openapi.json";

// ---------------------------------------------------------------------------------------------
// The schema
// ---------------------------------------------------------------------------------------------

/// The copy kept in the repository, so that a checkout on its own can run the tests.
const VENDORED: &str = "tests/contracts/openai-images.openapi.json";

/// The OpenAPI file: the shared reference folder beside the checkout when it is there (the
/// authority), else the copy in the repository.
fn contract_path() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let candidates = [
        manifest.join("..").join(CONTRACT),
        manifest.join(CONTRACT),
        manifest.join(VENDORED),
    ];
    candidates.iter().find(|p| p.is_file()).cloned().unwrap_or_else(|| {
        panic!(
            "the wire contract is missing: looked for {:?} (shared/ must sit beside the checkout)",
            candidates
        )
    })
}

fn load_document() -> Value {
    let path = contract_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Rewrite an OpenAPI 3.1 schema into plain JSON Schema 2020-12: `$ref`s into
/// `#/components/schemas/` point at `#/$defs/`, and `nullable: true` becomes
/// `anyOf: [original, {type: null}]`.
fn to_json_schema(value: &Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(to_json_schema).collect()),
        Value::Object(map) => {
            let mut out = Map::new();
            let mut nullable = false;
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("nullable", Value::Bool(b)) => nullable = *b,
                    ("$ref", Value::String(r)) => {
                        let r = r.replacen("#/components/schemas/", "#/$defs/", 1);
                        out.insert(k.clone(), Value::String(r));
                    }
                    _ => {
                        out.insert(k.clone(), to_json_schema(v));
                    }
                }
            }
            if nullable {
                json!({ "anyOf": [Value::Object(out), { "type": "null" }] })
            } else {
                Value::Object(out)
            }
        }
        other => other.clone(),
    }
}

struct Contract {
    validator: jsonschema::Validator,
    /// The raw `CreateImageRequest` (its `properties`, with their `enum`s).
    raw: Value,
}

impl Contract {
    fn is_valid(&self, body: &Value) -> bool {
        self.validator.is_valid(body)
    }

    fn errors(&self, body: &Value) -> String {
        self.validator
            .iter_errors(body)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The enum a property is restricted to, when it is (`model` and `size` take any string).
    fn enum_of(&self, key: &str) -> Option<Vec<Value>> {
        let prop = self.raw.get("properties")?.get(key)?;
        if prop.get("anyOf").is_some() {
            return None;
        }
        prop.get("enum")?.as_array().cloned()
    }
}

fn contract() -> &'static Contract {
    static CONTRACT: OnceLock<Contract> = OnceLock::new();
    CONTRACT.get_or_init(|| {
        let doc = load_document();
        let schemas = doc
            .pointer("/components/schemas")
            .and_then(Value::as_object)
            .expect("the contract has components.schemas");
        let raw = schemas
            .get("CreateImageRequest")
            .cloned()
            .expect("the contract defines CreateImageRequest");
        let defs: Map<String, Value> = schemas
            .iter()
            .map(|(k, v)| (k.clone(), to_json_schema(v)))
            .collect();
        let mut root = match to_json_schema(&raw) {
            Value::Object(m) => m,
            other => panic!("CreateImageRequest is not an object schema: {other}"),
        };
        root.insert(
            "$schema".into(),
            json!("https://json-schema.org/draft/2020-12/schema"),
        );
        root.insert("$defs".into(), Value::Object(defs));
        let root = Value::Object(root);
        let text = root.to_string();
        assert!(
            !text.contains("#/components/"),
            "a $ref was left unrewritten"
        );
        assert!(
            !text.contains("\"nullable\""),
            "a nullable was left unrewritten"
        );
        let validator = jsonschema::draft202012::new(&root)
            .unwrap_or_else(|e| panic!("the schema does not compile: {e}"));
        Contract { validator, raw }
    })
}

// ---------------------------------------------------------------------------------------------
// The invariants every checked request must keep
// ---------------------------------------------------------------------------------------------

thread_local! {
    /// Bodies validated by this test thread (tests run in parallel).
    static VALIDATED: Cell<usize> = const { Cell::new(0) };
}

fn run(p: &GenerationParams) -> Result<easel::api::CheckedRequest, ValidationError> {
    check(p, &Catalog::builtin(), &ProviderRules::default())
}

/// Wire names of the fields a request sets, plus the two always sent.
fn expected_keys(p: &GenerationParams) -> BTreeSet<String> {
    let mut keys: BTreeSet<String> = p
        .set_fields()
        .iter()
        .map(|f| f.wire_name().to_string())
        .collect();
    keys.insert("prompt".into());
    keys.insert("model".into());
    keys
}

/// An accepted request: the body has exactly the fields set, only fields the model takes (when
/// the model is known), and it matches the contract.
fn assert_accepted_body(p: &GenerationParams, body: &Map<String, Value>) -> Result<(), String> {
    let c = contract();
    let value = Value::Object(body.clone());
    let keys: BTreeSet<String> = body.keys().cloned().collect();
    if keys != expected_keys(p) {
        return Err(format!(
            "body keys {keys:?} differ from the fields set {:?}: {value}",
            expected_keys(p)
        ));
    }
    if body.get("prompt") != Some(&json!(p.prompt))
        || body.get("model") != Some(&json!(p.model.trim()))
    {
        return Err(format!("prompt or model altered: {value}"));
    }
    match Catalog::builtin().get(p.model.trim()) {
        Some(spec) => {
            let mut allowed: BTreeSet<&str> = spec.fields.iter().map(|f| f.wire_name()).collect();
            allowed.extend(["prompt", "model"]);
            if let Some(extra) = keys.iter().find(|k| !allowed.contains(k.as_str())) {
                return Err(format!(
                    "{} does not take {extra}, yet the body carries it: {value}",
                    spec.name
                ));
            }
            // A model reported by third parties may take qualities OpenAI's description does
            // not list yet (xhigh, max): the rest of its body must still match.
            let mut value = value.clone();
            if spec.reported_by_third_parties
                && let (Some(q), Some(list)) = (value.get("quality"), c.enum_of("quality"))
                && !list.contains(q)
                && spec.qualities.iter().any(|k| json!(k) == *q)
            {
                value["quality"] = json!("high");
            }
            if !c.is_valid(&value) {
                return Err(format!(
                    "body does not match CreateImageRequest: {value}: {}",
                    c.errors(&value)
                ));
            }
        }
        None => {
            // Unknown models are sent as written after generic checks: the body matches the
            // contract exactly when every enum-restricted value is one the contract lists.
            let in_enums = body
                .iter()
                .all(|(k, v)| c.enum_of(k).is_none_or(|list| list.contains(v)));
            if c.is_valid(&value) != in_enums {
                return Err(format!(
                    "unknown model: validity {} but enum membership {in_enums}: {value}: {}",
                    c.is_valid(&value),
                    c.errors(&value)
                ));
            }
        }
    }
    VALIDATED.with(|v| v.set(v.get() + 1));
    Ok(())
}

/// A refused request names a real field, and one the request actually set (or prompt/model).
fn assert_refusal(p: &GenerationParams, e: &ValidationError) -> Result<(), String> {
    let real: BTreeSet<&str> = Field::ALL
        .iter()
        .map(|f| f.wire_name())
        .chain(["prompt", "model"])
        .collect();
    if !real.contains(e.field) {
        return Err(format!("refusal names no real field: {e} for {p:?}"));
    }
    if !expected_keys(p).contains(e.field) {
        return Err(format!(
            "refusal names {} which the request did not set: {e} for {p:?}",
            e.field
        ));
    }
    if e.message.trim().is_empty() {
        return Err(format!("refusal of {} has no message", e.field));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Negative and positive controls: the validator is real
// ---------------------------------------------------------------------------------------------

#[test]
fn the_validator_can_fail() {
    let c = contract();
    let invalid = [
        json!({ "prompt": 5 }),
        json!({ "model": "gpt-image-2" }),
        json!({ "prompt": "x", "quality": "ultra" }),
        json!({ "prompt": "x", "n": 0 }),
        json!({ "prompt": "x", "n": 11 }),
        json!({ "prompt": "x", "n": "2" }),
        json!({ "prompt": "x", "stream": "yes" }),
        json!({ "prompt": "x", "output_format": "gif" }),
        json!({ "prompt": "x", "style": "anime" }),
        json!({ "prompt": "x", "response_format": "png" }),
        json!({ "prompt": "x", "background": "clear" }),
        json!({ "prompt": "x", "moderation": "none" }),
        json!({ "prompt": "x", "output_compression": 1.5 }),
        json!({ "prompt": "x", "size": 1024 }),
        json!({ "prompt": "x", "model": 2 }),
        json!({ "prompt": "x", "user": 7 }),
        // Through the rewritten $ref to PartialImages.
        json!({ "prompt": "x", "partial_images": 4 }),
        json!({ "prompt": "x", "partial_images": -1 }),
        json!("just a string"),
    ];
    for body in &invalid {
        assert!(
            !c.is_valid(body),
            "{body} must NOT match CreateImageRequest"
        );
    }
    let valid = [
        json!({ "prompt": "x" }),
        // nullable: true honoured, on plain properties and through the $ref.
        json!({ "prompt": "x", "model": null, "n": null, "quality": null, "partial_images": null }),
        json!({ "prompt": "x", "model": "anything", "size": "anything" }),
        json!({ "prompt": "x", "partial_images": 3, "stream": true }),
    ];
    for body in &valid {
        assert!(
            c.is_valid(body),
            "{body} must match CreateImageRequest: {}",
            c.errors(body)
        );
    }
    // The contract's enums are visible to the unknown-model check.
    assert!(
        c.enum_of("quality")
            .is_some_and(|l| l.contains(&json!("hd")))
    );
    assert!(c.enum_of("size").is_none() && c.enum_of("model").is_none());
}

// ---------------------------------------------------------------------------------------------
// Systematic combinations per catalogue model
// ---------------------------------------------------------------------------------------------

type Setter = Box<dyn Fn(&mut GenerationParams)>;

/// One request field and the values tried for it; `known` lists the catalogue's own values,
/// each of which must be accepted at least once.
struct Axis {
    name: &'static str,
    values: Vec<(String, Setter)>,
    known: Vec<String>,
}

fn string_axis(
    name: &'static str,
    values: &[String],
    extra: &[&str],
    set: fn(&mut GenerationParams, String),
) -> Axis {
    let mut all: Vec<String> = values.to_vec();
    all.extend(extra.iter().map(|s| s.to_string()));
    Axis {
        name,
        values: all
            .into_iter()
            .map(|v| {
                let label = v.clone();
                let setter: Setter = Box::new(move |p: &mut GenerationParams| set(p, v.clone()));
                (label, setter)
            })
            .collect(),
        known: values.to_vec(),
    }
}

/// Sizes beyond the presets for models with flexible sizes: valid ones and edge cases.
const FLEXIBLE_SIZES: &[&str] = &[
    "1536x864",
    "2048x1152",
    "2560x1440",
    "3840x2160",
    "2160x3840",
    "1024x3072",
    "3072x1024",
    "16x48",
    "512x512",
    "1008x1008",
    "3840x1280",
];
/// Sizes that must be refused by flexible models (not multiples of 16, too wide, too large).
const BAD_FLEXIBLE_SIZES: &[&str] = &["1000x1000", "4096x1024", "3840x3840", "4000x2000"];

fn axes_for(spec: &ModelSpec) -> Vec<Axis> {
    let mut axes = Vec::new();
    for field in &spec.fields {
        let axis = match field {
            Field::N => {
                let mut values: Vec<(String, Setter)> = (1..=spec.n_max)
                    .map(|n| {
                        (
                            n.to_string(),
                            Box::new(move |p: &mut GenerationParams| p.n = n) as Setter,
                        )
                    })
                    .collect();
                // One past the model's limit (refused).
                let over = spec.n_max + 1;
                values.push((
                    over.to_string(),
                    Box::new(move |p: &mut GenerationParams| p.n = over),
                ));
                Axis {
                    name: "n",
                    values,
                    known: (1..=spec.n_max).map(|n| n.to_string()).collect(),
                }
            }
            Field::Size => {
                let mut axis = string_axis("size", &spec.sizes, &[], |p, v| p.size = Some(v));
                if spec.flexible_size.is_some() {
                    let flex: Vec<String> = FLEXIBLE_SIZES.iter().map(|s| s.to_string()).collect();
                    let more =
                        string_axis("size", &flex, BAD_FLEXIBLE_SIZES, |p, v| p.size = Some(v));
                    axis.values.extend(more.values);
                    axis.known.extend(more.known);
                } else {
                    let more = string_axis("size", &[], &["2048x2048", "1536x864"], |p, v| {
                        p.size = Some(v)
                    });
                    axis.values.extend(more.values);
                }
                axis
            }
            Field::Quality => {
                string_axis("quality", &spec.qualities, &[], |p, v| p.quality = Some(v))
            }
            Field::Background => string_axis("background", &spec.backgrounds, &[], |p, v| {
                p.background = Some(v)
            }),
            Field::OutputFormat => {
                string_axis("output_format", &spec.output_formats, &[], |p, v| {
                    p.output_format = Some(v)
                })
            }
            Field::OutputCompression => Axis {
                name: "output_compression",
                values: [0u8, 50, 100]
                    .into_iter()
                    .map(|c| {
                        (
                            c.to_string(),
                            Box::new(move |p: &mut GenerationParams| p.output_compression = Some(c))
                                as Setter,
                        )
                    })
                    .collect(),
                known: vec!["0".into(), "50".into(), "100".into()],
            },
            Field::Moderation => string_axis("moderation", &spec.moderations, &[], |p, v| {
                p.moderation = Some(v)
            }),
            Field::Style => string_axis("style", &spec.styles, &[], |p, v| p.style = Some(v)),
            Field::ResponseFormat => {
                string_axis("response_format", &spec.response_formats, &[], |p, v| {
                    p.response_format = Some(v)
                })
            }
            Field::Stream => {
                let mut values: Vec<(String, Setter)> = vec![(
                    "on".into(),
                    Box::new(|p: &mut GenerationParams| p.stream = true) as Setter,
                )];
                let mut known = vec!["on".to_string()];
                if spec.accepts(Field::PartialImages) {
                    for k in 0..=3u8 {
                        let label = format!("on+partial_images={k}");
                        known.push(label.clone());
                        values.push((
                            label,
                            Box::new(move |p: &mut GenerationParams| {
                                p.stream = true;
                                p.partial_images = Some(k);
                            }),
                        ));
                    }
                }
                Axis {
                    name: "stream",
                    values,
                    known,
                }
            }
            // Covered together with stream (it needs it).
            Field::PartialImages => continue,
            // Edits only: covered by the multipart contract tests below.
            Field::InputFidelity => continue,
            Field::User => string_axis(
                "user",
                &[
                    "user-1234".to_string(),
                    "夜 ünïcode 🎨".to_string(),
                    String::new(),
                ],
                &[],
                |p, v| p.user = Some(v),
            ),
        };
        axes.push(axis);
    }
    // A lone partial_images without stream (refused, must name partial_images).
    if spec.accepts(Field::PartialImages) {
        axes.push(Axis {
            name: "partial_images_alone",
            values: vec![(
                "2".into(),
                Box::new(|p: &mut GenerationParams| p.partial_images = Some(2)) as Setter,
            )],
            known: vec![],
        });
    }
    axes
}

/// Try every combination of values of the axes in `chosen` (others unset).
fn product(
    base: &GenerationParams,
    axes: &[Axis],
    chosen: &[usize],
    accepted: &mut BTreeSet<(String, String)>,
    counts: &mut (usize, usize),
    failures: &mut Vec<String>,
) {
    let lens: Vec<usize> = chosen.iter().map(|&i| axes[i].values.len()).collect();
    if lens.contains(&0) {
        return;
    }
    let mut idx = vec![0usize; chosen.len()];
    loop {
        let mut p = base.clone();
        for (slot, &axis) in chosen.iter().enumerate() {
            (axes[axis].values[idx[slot]].1)(&mut p);
        }
        match run(&p) {
            Ok(c) => {
                counts.0 += 1;
                if let Err(e) = assert_accepted_body(&p, &c.body) {
                    failures.push(e);
                }
                for (slot, &axis) in chosen.iter().enumerate() {
                    accepted.insert((
                        axes[axis].name.to_string(),
                        axes[axis].values[idx[slot]].0.clone(),
                    ));
                }
            }
            Err(e) => {
                counts.1 += 1;
                if let Err(m) = assert_refusal(&p, &e) {
                    failures.push(m);
                }
            }
        }
        // Next index, odometer style.
        let mut slot = 0;
        loop {
            if slot == idx.len() {
                return;
            }
            idx[slot] += 1;
            if idx[slot] < lens[slot] {
                break;
            }
            idx[slot] = 0;
            slot += 1;
        }
    }
}

#[test]
fn every_catalogue_combination_matches_the_contract() {
    let catalog = Catalog::builtin();
    let before = VALIDATED.with(Cell::get);
    let mut failures = Vec::new();
    let mut total = (0usize, 0usize);
    let mut models = 0;
    for spec in catalog.models() {
        models += 1;
        let base = GenerationParams {
            prompt: "a lighthouse at dusk, oil on canvas".into(),
            model: spec.name.clone(),
            ..Default::default()
        };
        let axes = axes_for(spec);
        let mut accepted = BTreeSet::new();
        let mut counts = (0, 0);
        // Nothing set, every single axis, every pair and every triple of axes.
        product(&base, &axes, &[], &mut accepted, &mut counts, &mut failures);
        for a in 0..axes.len() {
            product(
                &base,
                &axes,
                &[a],
                &mut accepted,
                &mut counts,
                &mut failures,
            );
            for b in a + 1..axes.len() {
                product(
                    &base,
                    &axes,
                    &[a, b],
                    &mut accepted,
                    &mut counts,
                    &mut failures,
                );
                for c in b + 1..axes.len() {
                    product(
                        &base,
                        &axes,
                        &[a, b, c],
                        &mut accepted,
                        &mut counts,
                        &mut failures,
                    );
                }
            }
        }
        // Every value the catalogue lists is accepted somewhere (the combinations are not all
        // refusals, which would validate nothing).
        for axis in &axes {
            for known in &axis.known {
                if !accepted.contains(&(axis.name.to_string(), known.clone())) {
                    failures.push(format!(
                        "{}: {}={known} was never accepted",
                        spec.name, axis.name
                    ));
                }
            }
        }
        // The prompt at the model's limit, and in other scripts.
        for prompt in [
            "x".repeat(spec.prompt_max_chars),
            "夜晚的海边小镇 🌊".into(),
            " padded ".into(),
        ] {
            let p = GenerationParams {
                prompt,
                ..base.clone()
            };
            match run(&p) {
                Ok(c) => {
                    counts.0 += 1;
                    if let Err(e) = assert_accepted_body(&p, &c.body) {
                        failures.push(e);
                    }
                }
                Err(e) => failures.push(format!("{}: prompt refused: {e}", spec.name)),
            }
        }
        eprintln!("{}: {} accepted, {} refused", spec.name, counts.0, counts.1);
        assert!(
            counts.0 > 20,
            "{}: only {} combinations accepted",
            spec.name,
            counts.0
        );
        total.0 += counts.0;
        total.1 += counts.1;
    }
    assert!(
        models >= 6,
        "the built-in catalogue shrank to {models} models"
    );
    let validated = VALIDATED.with(Cell::get) - before;
    eprintln!(
        "contract: {validated} request bodies validated against CreateImageRequest ({} accepted, {} refused, {models} models)",
        total.0, total.1
    );
    assert!(
        failures.is_empty(),
        "{} failures, first 20:\n{}",
        failures.len(),
        failures[..failures.len().min(20)].join("\n")
    );
    assert_eq!(validated, total.0);
}

/// Each model's catalogue values are a subset of what the contract lists, so accepted bodies
/// cannot drift from the wire format through the catalogue.
#[test]
fn catalogue_values_are_contract_values() {
    let c = contract();
    let mut problems = Vec::new();
    for spec in Catalog::builtin().models() {
        let lists: [(&str, &Vec<String>); 5] = [
            ("quality", &spec.qualities),
            ("background", &spec.backgrounds),
            ("output_format", &spec.output_formats),
            ("moderation", &spec.moderations),
            ("response_format", &spec.response_formats),
        ];
        for (key, values) in lists.iter().chain([("style", &spec.styles)].iter()) {
            let allowed = c
                .enum_of(key)
                .unwrap_or_else(|| panic!("the contract has no enum for {key}"));
            for v in values.iter() {
                // Models reported by third parties add qualities (see docs/models.md).
                let beyond = spec.reported_by_third_parties && *key == "quality";
                if !allowed.contains(&json!(v)) && !beyond {
                    problems.push(format!("{}: {key}={v} is not in the contract", spec.name));
                }
            }
        }
        assert!(
            spec.n_max <= 10 && spec.n_max >= 1,
            "{}: n_max {}",
            spec.name,
            spec.n_max
        );
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

// ---------------------------------------------------------------------------------------------
// Random parameters
// ---------------------------------------------------------------------------------------------

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Every string tried for a field, from any model or none: valid elsewhere, or plain junk.
fn any_value(field: Field) -> Vec<String> {
    strings(match field {
        Field::Size => &[
            "auto",
            "1024x1024",
            "1536x1024",
            "1024x1536",
            "256x256",
            "512x512",
            "1792x1024",
            "1024x1792",
            "2048x1152",
            "3840x2160",
            "1000x1000",
            "4096x4096",
            "16x48",
            "big",
            "0x0",
            "1024X1024",
        ],
        Field::Quality => &[
            "auto", "low", "medium", "high", "standard", "hd", "ultra", "xhigh", "",
        ],
        Field::Background => &["auto", "transparent", "opaque", "clear"],
        Field::OutputFormat => &["png", "jpeg", "webp", "gif", "jpg"],
        Field::Moderation => &["auto", "low", "none"],
        Field::Style => &["vivid", "natural", "anime"],
        Field::ResponseFormat => &["url", "b64_json", "png"],
        Field::User => &["user-1234", "", "夜"],
        _ => &[],
    })
}

/// A string field: mostly unset or one of the model's own values, sometimes anything at all.
fn string_field(spec: Option<&ModelSpec>, field: Field) -> BoxedStrategy<Option<String>> {
    let any = any_value(field);
    let own: Vec<String> = match (spec, field) {
        (None, _) => any.clone(),
        (Some(s), _) if !s.accepts(field) => vec![],
        (Some(s), Field::Size) => {
            let mut v = s.sizes.clone();
            if s.flexible_size.is_some() {
                v.extend(strings(FLEXIBLE_SIZES));
            }
            v
        }
        (Some(s), Field::Quality) => s.qualities.clone(),
        (Some(s), Field::Background) => s.backgrounds.clone(),
        (Some(s), Field::OutputFormat) => s.output_formats.clone(),
        (Some(s), Field::Moderation) => s.moderations.clone(),
        (Some(s), Field::Style) => s.styles.clone(),
        (Some(s), Field::ResponseFormat) => s.response_formats.clone(),
        (Some(_), _) => any.clone(),
    };
    let anything = proptest::sample::select(any).prop_map(Some);
    if own.is_empty() {
        prop_oneof![12 => Just(None), 1 => anything].boxed()
    } else {
        prop_oneof![5 => Just(None), 6 => proptest::sample::select(own).prop_map(Some), 1 => anything].boxed()
    }
}

fn params_for(model: String) -> BoxedStrategy<GenerationParams> {
    let catalog = Catalog::builtin();
    let spec = catalog.get(model.trim()).cloned();
    let spec = spec.as_ref();
    let takes = |f: Field| spec.is_none_or(|s| s.accepts(f));
    let prompt = prop_oneof![
        8 => "[a-z ]{1,60}",
        1 => Just(String::new()),
        1 => Just("   ".to_string()),
        2 => "\\PC{1,40}",
        1 => (990usize..1010).prop_map(|n| "y".repeat(n)),
        1 => (3990usize..4010).prop_map(|n| "z".repeat(n)),
    ];
    let n_max = spec.map_or(10, |s| s.n_max);
    let n = if takes(Field::N) {
        prop_oneof![6 => 1u8..=n_max, 1 => 0u8..=12].boxed()
    } else {
        prop_oneof![8 => Just(1u8), 1 => 0u8..=12].boxed()
    };
    let compression = if takes(Field::OutputCompression) {
        prop_oneof![4 => Just(None), 4 => (0u8..=100).prop_map(Some), 1 => (101u8..=255).prop_map(Some)].boxed()
    } else {
        prop_oneof![12 => Just(None), 1 => any::<u8>().prop_map(Some)].boxed()
    };
    let stream = if takes(Field::Stream) {
        prop_oneof![
            6 => Just((false, None)),
            2 => Just((true, None)),
            3 => (0u8..=3).prop_map(|k| (true, Some(k))),
            1 => (0u8..=6).prop_map(|k| (false, Some(k))),
            1 => (4u8..=9).prop_map(|k| (true, Some(k))),
        ]
        .boxed()
    } else {
        prop_oneof![12 => Just((false, None)), 1 => (any::<bool>(), proptest::option::of(0u8..=5))]
            .boxed()
    };
    (
        (
            prompt,
            Just(model),
            n,
            string_field(spec, Field::Size),
            string_field(spec, Field::Quality),
        ),
        (
            string_field(spec, Field::Background),
            string_field(spec, Field::OutputFormat),
            compression,
            string_field(spec, Field::Moderation),
        ),
        (
            string_field(spec, Field::Style),
            string_field(spec, Field::ResponseFormat),
            stream,
            string_field(spec, Field::User),
        ),
    )
        .prop_map(
            |(
                (prompt, model, n, size, quality),
                (background, output_format, output_compression, moderation),
                (style, response_format, (stream, partial_images), user),
            )| GenerationParams {
                prompt,
                model,
                n,
                size,
                quality,
                background,
                output_format,
                output_compression,
                moderation,
                style,
                response_format,
                stream,
                partial_images,
                user,
                ..GenerationParams::default()
            },
        )
        .boxed()
}

/// A model (mostly from the catalogue, sometimes unknown or blank), then parameters for it.
fn params_strategy() -> impl Strategy<Value = GenerationParams> {
    let mut models: Vec<String> = Catalog::builtin()
        .names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    models.extend(strings(&[
        "grok-imagine-image",
        "local-sd",
        "",
        "  ",
        " gpt-image-2 ",
    ]));
    proptest::sample::select(models).prop_flat_map(params_for)
}

/// Random parameters, known and unknown models: an accepted request keeps the contract, a refused
/// one names a field it set. Run through a `TestRunner` to count what happened (a run that
/// accepts almost nothing would prove little).
#[test]
fn random_params_keep_the_contract() {
    let config = ProptestConfig {
        cases: 3000,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let accepted = Cell::new(0usize);
    let refused = Cell::new(0usize);
    let before = VALIDATED.with(Cell::get);
    let outcome = runner.run(&params_strategy(), |p| {
        match run(&p) {
            Ok(c) => {
                accepted.set(accepted.get() + 1);
                assert_accepted_body(&p, &c.body).map_err(TestCaseError::fail)?;
                prop_assert_eq!(c.stream, p.stream);
            }
            Err(e) => {
                refused.set(refused.get() + 1);
                assert_refusal(&p, &e).map_err(TestCaseError::fail)?;
            }
        }
        Ok(())
    });
    if let Err(e) = outcome {
        panic!("{e}");
    }
    let validated = VALIDATED.with(Cell::get) - before;
    eprintln!(
        "contract (random): {validated} request bodies validated, {} accepted, {} refused",
        accepted.get(),
        refused.get()
    );
    assert!(
        accepted.get() >= 300,
        "only {} random requests were accepted",
        accepted.get()
    );
    assert!(
        refused.get() >= 150,
        "only {} random requests were refused",
        refused.get()
    );
}

/// The repository's copy of the contract is the shared one, byte for byte.
#[test]
fn the_vendored_contract_matches_the_shared_one() {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let vendored = std::fs::read(manifest.join(VENDORED)).expect("the vendored contract");
    let shared = manifest.join("..").join(CONTRACT);
    if let Ok(shared) = std::fs::read(&shared) {
        assert!(
            shared == vendored,
            "tests/contracts/ is out of date: copy {CONTRACT} over it"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Edits and variations: multipart bodies against CreateImageEditRequest and
// CreateImageVariationRequest, as the fake server checks them
// ---------------------------------------------------------------------------------------------

/// A PNG of `w`×`h` with every pixel's alpha `alpha`, written to `dir/name`.
fn png_file(dir: &std::path::Path, name: &str, w: u32, h: u32, alpha: u8) -> PathBuf {
    let img = image::RgbaImage::from_pixel(w, h, image::Rgba([40, 90, 200, alpha]));
    let path = dir.join(name);
    img.save_with_format(&path, image::ImageFormat::Png)
        .unwrap();
    path
}

/// Send `checked` to the fake server and return what it received.
fn send_to_fake(
    checked: &easel::api::CheckedRequest,
) -> (support::fake_server::Recorded, Result<usize, String>) {
    use support::fake_server::FakeServer;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let server = FakeServer::start().await;
        let mut opts = easel::api::ClientOptions::new("OpenAI", &server.base_url());
        opts.api_key = easel::secret::ApiKey::new("sk-contract-test-key");
        opts.max_retries = 0;
        let client = easel::api::ImagesClient::new(opts).unwrap();
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let result = client
            .generate(checked, &tokio_util::sync::CancellationToken::new(), &tx)
            .await
            .map(|o| o.images.len())
            .map_err(|e| e.to_string());
        (server.last_request().expect("a request was sent"), result)
    })
}

/// Every edit the client builds, for every GPT image model and the DALL·E dialect, keeps the
/// wire format: multipart, known fields only, values the schema allows, files as image parts.
#[test]
fn edit_requests_keep_the_multipart_contract() {
    let dir = tempfile::tempdir().unwrap();
    let a = png_file(dir.path(), "a.png", 32, 32, 255);
    let b = png_file(dir.path(), "b.png", 32, 32, 255);
    let mask = png_file(dir.path(), "mask.png", 32, 32, 0);
    let catalog = Catalog::builtin();
    let mut sent = 0;
    for spec in catalog.models().filter(|m| m.edit_images() > 0) {
        type Setter = fn(&mut GenerationParams);
        let variants: &[Setter] = &[
            |_| {},
            |p| {
                p.quality = Some("low".into());
                p.n = 2;
            },
            |p| p.size = Some("1024x1024".into()),
            |p| {
                p.output_format = Some("webp".into());
                p.output_compression = Some(60);
                p.background = Some("opaque".into());
            },
            |p| {
                p.stream = true;
                p.partial_images = Some(2);
            },
            |p| p.input_fidelity = Some("high".into()),
            |p| p.response_format = Some("b64_json".into()),
        ];
        for set in variants {
            let mut p = GenerationParams {
                prompt: "only change the sky".into(),
                model: spec.name.clone(),
                images: vec![easel::api::InputImage::file(&a)],
                mask: Some(easel::api::InputImage::file(&mask)),
                ..Default::default()
            };
            if spec.edit_images() > 1 {
                p.images.push(easel::api::InputImage::file(&b));
            }
            set(&mut p);
            let Ok(checked) = check(&p, &catalog, &ProviderRules::default()) else {
                continue; // refused before sending: the model does not take the field
            };
            let (recorded, result) = send_to_fake(&checked);
            assert!(
                recorded.is_edit(),
                "{}: went to {}",
                spec.name,
                recorded.path
            );
            let violations = recorded.contract_violations();
            assert!(violations.is_empty(), "{} {p:?}: {violations:?}", spec.name);
            assert!(result.is_ok(), "{}: {result:?}", spec.name);
            // The pictures went as files, in order, byte for byte.
            let field = if spec.edit_images() > 1 {
                "image[]"
            } else {
                "image"
            };
            let files = recorded.files(field);
            assert_eq!(files.len(), p.images.len(), "{}", spec.name);
            assert_eq!(files[0].data, std::fs::read(&a).unwrap());
            assert_eq!(
                recorded.files("mask")[0].data,
                std::fs::read(&mask).unwrap()
            );
            // The key travels in the header only.
            assert!(!String::from_utf8_lossy(&recorded.raw_body).contains("sk-contract-test-key"));
            sent += 1;
        }
    }
    assert!(sent >= 20, "only {sent} edits were checked");
}

/// A variation keeps CreateImageVariationRequest.
#[test]
fn variation_requests_keep_the_multipart_contract() {
    let dir = tempfile::tempdir().unwrap();
    let a = png_file(dir.path(), "a.png", 32, 32, 255);
    let rules = ProviderRules {
        name: "local".into(),
        dialect: Some(easel::catalog::Dialect::Dalle),
        fields: None,
        variations: true,
    };
    let p = GenerationParams {
        prompt: String::new(),
        model: "dall-e-2".into(),
        n: 2,
        size: Some("256x256".into()),
        response_format: Some("b64_json".into()),
        images: vec![easel::api::InputImage::file(&a)],
        variation: true,
        ..Default::default()
    };
    let checked = check(&p, &Catalog::builtin(), &rules).unwrap();
    let (recorded, result) = send_to_fake(&checked);
    assert!(recorded.is_variation(), "{}", recorded.path);
    assert_eq!(recorded.contract_violations(), Vec::<String>::new());
    assert_eq!(result, Ok(2));
    assert!(recorded.body.get("prompt").is_none(), "{}", recorded.body);
}

/// The negative control: the check can fail. A field the edit schema does not have, a value
/// outside an enum, a picture sent as text, a non-image file part: each is caught, alone.
#[test]
fn the_multipart_check_can_fail() {
    use support::fake_server::{FormPart, multipart_violations};
    let headers = vec![(
        "content-type".to_string(),
        "multipart/form-data; boundary=x".to_string(),
    )];
    let text = |name: &str, value: &str| FormPart {
        name: name.into(),
        filename: None,
        content_type: None,
        data: value.as_bytes().to_vec(),
    };
    let file = |name: &str, ct: &str| FormPart {
        name: name.into(),
        filename: Some("a.png".into()),
        content_type: Some(ct.into()),
        data: b"\x89PNG".to_vec(),
    };
    let good = vec![
        text("prompt", "a sky"),
        text("model", "gpt-image-2"),
        file("image[]", "image/png"),
    ];
    assert_eq!(
        multipart_violations("CreateImageEditRequest", &headers, &good),
        Vec::<String>::new()
    );
    let bad_cases: Vec<(&str, FormPart)> = vec![
        ("moderation", text("moderation", "low")),
        ("input_fidelity", text("input_fidelity", "medium")),
        ("output_format", text("output_format", "gif")),
        ("n", text("n", "many")),
        ("mask", text("mask", "not a file")),
        ("image[]", file("image[]", "text/plain")),
    ];
    for (what, part) in bad_cases {
        let mut parts = good.clone();
        parts.push(part);
        let v = multipart_violations("CreateImageEditRequest", &headers, &parts);
        assert!(!v.is_empty(), "{what}: not caught");
    }
    // Without the prompt (required), and as JSON instead of multipart.
    let v = multipart_violations("CreateImageEditRequest", &headers, &good[1..]);
    assert!(v.iter().any(|e| e.contains("prompt")), "{v:?}");
    let json_headers = vec![("content-type".to_string(), "application/json".to_string())];
    assert!(!multipart_violations("CreateImageEditRequest", &json_headers, &good).is_empty());
    // A variation has no prompt field at all.
    let v = multipart_violations("CreateImageVariationRequest", &headers, &good);
    assert!(v.iter().any(|e| e.contains("prompt")), "{v:?}");
}

/// And the fake server refuses such a request with a 400, as a real server would.
#[test]
fn the_fake_server_refuses_a_bad_multipart_edit() {
    use support::fake_server::FakeServer;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let server = FakeServer::start().await;
        let form = reqwest::multipart::Form::new()
            .text("prompt", "a sky")
            .text("model", "gpt-image-2")
            .text("moderation", "low")
            .part(
                "image[]",
                reqwest::multipart::Part::bytes(b"\x89PNG\r\n\x1a\n".to_vec())
                    .file_name("a.png")
                    .mime_str("image/png")
                    .unwrap(),
            );
        let resp = reqwest::Client::new()
            .post(format!("{}/images/edits", server.base_url()))
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 400);
        let body = resp.text().await.unwrap();
        assert!(body.contains("moderation"), "{body}");
        assert_eq!(server.requests().len(), 1);
    });
}
