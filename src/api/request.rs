//! What a user asks for, the checks it must pass against the catalogue, and the JSON body that
//! goes on the wire. Pure: no I/O, so every combination is tested without a server.

use super::edit::{EditFiles, Endpoint, InputImage, Limits};
use crate::catalog::{self, Catalog, Dialect, Field, ModelSpec};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::fmt;

/// The parameters of one generation, as the user set them. `None` means "not set": the field is
/// left out and the server's default applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GenerationParams {
    pub prompt: String,
    pub model: String,
    pub n: u8,
    pub size: Option<String>,
    pub quality: Option<String>,
    pub background: Option<String>,
    pub output_format: Option<String>,
    pub output_compression: Option<u8>,
    pub moderation: Option<String>,
    pub style: Option<String>,
    pub response_format: Option<String>,
    pub stream: bool,
    pub partial_images: Option<u8>,
    pub user: Option<String>,
    /// Input pictures: set, the request is an edit (`POST /images/edits`), the first picture
    /// being the one edited and the others references.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<InputImage>,
    /// Where to edit the first picture: a PNG whose transparent pixels mark the area.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mask: Option<InputImage>,
    /// Edits only: `high` or `low`, how closely to keep the input pictures' features.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_fidelity: Option<String>,
    /// A variation of the one picture in `images` (`POST /images/variations`, DALL·E dialect):
    /// no prompt.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub variation: bool,
}

impl Default for GenerationParams {
    fn default() -> Self {
        GenerationParams {
            prompt: String::new(),
            model: catalog::DEFAULT_MODEL.to_string(),
            n: 1,
            size: None,
            quality: None,
            background: None,
            output_format: None,
            output_compression: None,
            moderation: None,
            style: None,
            response_format: None,
            stream: false,
            partial_images: None,
            user: None,
            images: Vec::new(),
            mask: None,
            input_fidelity: None,
            variation: false,
        }
    }
}

impl GenerationParams {
    /// The fields this request sets, besides prompt and model.
    pub fn set_fields(&self) -> Vec<Field> {
        let mut out = Vec::new();
        if self.n != 1 {
            out.push(Field::N);
        }
        let opts = [
            (Field::Size, self.size.is_some()),
            (Field::Quality, self.quality.is_some()),
            (Field::Background, self.background.is_some()),
            (Field::OutputFormat, self.output_format.is_some()),
            (Field::OutputCompression, self.output_compression.is_some()),
            (Field::Moderation, self.moderation.is_some()),
            (Field::Style, self.style.is_some()),
            (Field::ResponseFormat, self.response_format.is_some()),
            (Field::Stream, self.stream),
            (Field::PartialImages, self.partial_images.is_some()),
            (Field::User, self.user.is_some()),
            (Field::InputFidelity, self.input_fidelity.is_some()),
        ];
        out.extend(opts.iter().filter(|(_, set)| *set).map(|(f, _)| *f));
        out
    }

    /// The image format the answer will have, when the request decides it.
    pub fn expected_format(&self) -> &str {
        self.output_format.as_deref().unwrap_or("png")
    }

    /// Where the request goes: a generation, an edit (input pictures) or a variation.
    pub fn endpoint(&self) -> Endpoint {
        if self.variation {
            Endpoint::Variations
        } else if self.images.is_empty() {
            Endpoint::Generations
        } else {
            Endpoint::Edits
        }
    }
}

/// A request refused before sending: which field, and what would be allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    pub field: &'static str,
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for ValidationError {}

/// A request that passed the checks: the body to send, and warnings to show the user.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedRequest {
    pub body: Map<String, Value>,
    pub stream: bool,
    pub warnings: Vec<String>,
    /// Known to the catalogue (false: sent as written after generic checks only).
    pub known_model: bool,
    /// The files of an edit or a variation (None: a generation, `body` is the whole request).
    /// They are checked again, and streamed from disk, when the request is sent.
    pub edit: Option<EditFiles>,
}

impl CheckedRequest {
    pub fn endpoint(&self) -> Endpoint {
        self.edit
            .as_ref()
            .map_or(Endpoint::Generations, |e| e.endpoint)
    }
}

/// What the chosen provider takes: its dialect, and (when it says so) the only optional fields it
/// accepts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProviderRules {
    pub name: String,
    pub dialect: Option<Dialect>,
    pub fields: Option<Vec<Field>>,
    /// The provider serves `POST /images/variations` (a DALL·E-dialect server that says so).
    pub variations: bool,
}

/// The most images one request may ask for, whatever the model.
pub const N_MAX: u8 = 10;

fn err(field: &'static str, message: impl Into<String>) -> ValidationError {
    ValidationError {
        field,
        message: message.into(),
    }
}

fn one_of(
    field: &'static str,
    value: &str,
    allowed: &[String],
    model: &str,
) -> Result<(), ValidationError> {
    if allowed.iter().any(|a| a == value) {
        Ok(())
    } else {
        Err(err(
            field,
            format!(
                "{model} does not take \"{value}\"; allowed: {}",
                allowed.join(", ")
            ),
        ))
    }
}

/// Which models do take a field, to say where it would work.
fn takers(catalog: &Catalog, field: Field) -> String {
    let names: Vec<&str> = catalog
        .models()
        .filter(|m| m.accepts(field))
        .map(|m| m.name.as_str())
        .collect();
    if names.is_empty() {
        "no known model".into()
    } else {
        names.join(", ")
    }
}

/// Check `params` against the catalogue and the provider, and build the body to send.
pub fn check(
    params: &GenerationParams,
    catalog: &Catalog,
    provider: &ProviderRules,
) -> Result<CheckedRequest, ValidationError> {
    let mut warnings = Vec::new();
    let model = params.model.trim();
    if model.is_empty() {
        return Err(err("model", "no model given"));
    }
    if params.prompt.trim().is_empty() && !params.variation {
        return Err(err("prompt", "the prompt is empty"));
    }
    generic_checks(params)?;
    let spec = catalog.get(model);
    let edit = edit_plan(params, spec, provider, &mut warnings)?;
    match spec {
        Some(spec) => {
            model_checks(params, spec, catalog)?;
            if let Some(note) = &spec.note {
                warnings.push(format!("{model}: {note}"));
            }
        }
        None => {
            warnings.push(format!(
                "{model} is not in the model catalogue: it is sent as written, after generic checks only (known: {})",
                catalog.names().join(", ")
            ));
            dialect_checks(params, provider)?;
        }
    }
    if let Some(allowed) = &provider.fields {
        for f in params.set_fields() {
            if !allowed.contains(&f) {
                let list: Vec<&str> = allowed.iter().map(|f| f.wire_name()).collect();
                return Err(err(
                    f.wire_name(),
                    format!(
                        "provider {} does not accept {f}; it accepts: {}",
                        provider.name,
                        if list.is_empty() {
                            "only prompt and model".to_string()
                        } else {
                            list.join(", ")
                        }
                    ),
                ));
            }
        }
    }
    let mut body = body(params, model);
    match params.endpoint() {
        Endpoint::Generations => {}
        Endpoint::Edits => {
            // Not part of an edit request (CreateImageEditRequest): left out, said once.
            for (key, why) in [
                ("moderation", "edits have no moderation setting"),
                ("style", "edits have no style"),
            ] {
                if body.remove(key).is_some() {
                    warnings.push(format!("{key} is left out: {why}"));
                }
            }
        }
        Endpoint::Variations => {
            body.retain(|k, _| {
                matches!(
                    k.as_str(),
                    "model" | "n" | "size" | "response_format" | "user"
                )
            });
        }
    }
    Ok(CheckedRequest {
        body,
        stream: params.stream,
        warnings,
        known_model: spec.is_some(),
        edit,
    })
}

/// The files of an edit or a variation, and what the model and provider allow of them (the
/// files themselves are read by [`super::edit::check_files`]).
fn edit_plan(
    p: &GenerationParams,
    spec: Option<&ModelSpec>,
    provider: &ProviderRules,
    warnings: &mut Vec<String>,
) -> Result<Option<EditFiles>, ValidationError> {
    let endpoint = p.endpoint();
    if endpoint == Endpoint::Generations {
        if p.mask.is_some() {
            return Err(err("mask", "a mask needs a picture to edit: add --image"));
        }
        if p.input_fidelity.is_some() {
            return Err(err(
                "input_fidelity",
                "input fidelity applies to edits only: add --image",
            ));
        }
        return Ok(None);
    }
    let model = p.model.trim();
    let dialect = spec
        .map(|s| s.dialect)
        .or(provider.dialect)
        .unwrap_or_default();
    if let Some(f) = &p.input_fidelity
        && f != "high"
        && f != "low"
    {
        return Err(err(
            "input_fidelity",
            format!("\"{f}\" is not an input fidelity: high or low"),
        ));
    }
    if endpoint == Endpoint::Variations {
        if dialect != Dialect::Dalle {
            return Err(err(
                "variation",
                format!(
                    "variations are a DALL·E-dialect request, and {model} is a GPT image model: use an edit (--image) instead"
                ),
            ));
        }
        if !provider.variations {
            return Err(err(
                "variation",
                format!(
                    "provider {} does not offer variations (set variations = true in its profile if the server serves POST /images/variations)",
                    provider.name
                ),
            ));
        }
        if p.mask.is_some() {
            return Err(err("mask", "a variation takes no mask"));
        }
        if p.images.len() != 1 {
            return Err(err(
                "image",
                format!("a variation takes one picture, not {}", p.images.len()),
            ));
        }
        if let Some(f) = p.set_fields().into_iter().find(|f| {
            !matches!(
                f,
                Field::N | Field::Size | Field::ResponseFormat | Field::User
            )
        }) {
            return Err(err(
                f.wire_name(),
                format!("a variation takes n, size, response_format and user only, not {f}"),
            ));
        }
        if !p.prompt.trim().is_empty() {
            warnings.push("a variation takes no prompt: the prompt is not sent".into());
        }
        return Ok(Some(EditFiles {
            endpoint,
            images: p.images.iter().map(|i| i.path.clone()).collect(),
            mask: None,
            image_field: "image",
            limits: Limits::dalle(),
        }));
    }
    let max = match spec {
        Some(s) => s.edit_images(),
        None => catalog::dialect_edit_images(dialect),
    };
    if max == 0 {
        return Err(err(
            "image",
            format!(
                "{model} does not edit pictures: use a GPT image model (or dall-e-2 on a server that still has it)"
            ),
        ));
    }
    if p.images.len() > usize::from(max) {
        return Err(err(
            "image",
            format!(
                "{} pictures given: {model} takes at most {max} an edit",
                p.images.len()
            ),
        ));
    }
    let (limits, image_field) = match dialect {
        Dialect::Gpt => (
            Limits {
                max_images: usize::from(max),
                ..Limits::gpt()
            },
            "image[]",
        ),
        Dialect::Dalle => (
            Limits {
                max_images: usize::from(max),
                ..Limits::dalle()
            },
            "image",
        ),
    };
    Ok(Some(EditFiles {
        endpoint,
        images: p.images.iter().map(|i| i.path.clone()).collect(),
        mask: p.mask.as_ref().map(|m| m.path.clone()),
        image_field,
        limits,
    }))
}

/// Checks that hold for any model, known or not.
fn generic_checks(p: &GenerationParams) -> Result<(), ValidationError> {
    if !(1..=N_MAX).contains(&p.n) {
        return Err(err("n", format!("{} is out of range: 1 to {N_MAX}", p.n)));
    }
    if let Some(size) = &p.size
        && size != "auto"
        && catalog::parse_size(size).is_none()
    {
        return Err(err(
            "size",
            format!("\"{size}\" is not a size: write WIDTHxHEIGHT (like 1024x1536) or auto"),
        ));
    }
    if let Some(c) = p.output_compression
        && c > 100
    {
        return Err(err(
            "output_compression",
            format!("{c} is out of range: 0 to 100"),
        ));
    }
    if let Some(k) = p.partial_images {
        if k > 3 {
            return Err(err(
                "partial_images",
                format!("{k} is out of range: 0 to 3"),
            ));
        }
        if !p.stream {
            return Err(err(
                "partial_images",
                "partial images need streaming: add --stream",
            ));
        }
    }
    if p.stream && p.n > 1 {
        return Err(err(
            "stream",
            "streaming works with n = 1 only (the server's events do not say which image a partial belongs to)",
        ));
    }
    Ok(())
}

/// For a model the catalogue does not know, the provider's dialect still rules out the other
/// dialect's fields.
fn dialect_checks(p: &GenerationParams, provider: &ProviderRules) -> Result<(), ValidationError> {
    let other_dialect: &[Field] = match provider.dialect {
        Some(Dialect::Dalle) => &[
            Field::Background,
            Field::OutputFormat,
            Field::OutputCompression,
            Field::Moderation,
            Field::Stream,
            Field::PartialImages,
            Field::InputFidelity,
        ],
        Some(Dialect::Gpt) => &[Field::Style, Field::ResponseFormat],
        None => &[],
    };
    match p
        .set_fields()
        .into_iter()
        .find(|f| other_dialect.contains(f))
    {
        Some(f) => Err(err(
            f.wire_name(),
            format!(
                "provider {} speaks the {:?} dialect, which has no {f}",
                provider.name,
                provider.dialect.unwrap_or_default()
            ),
        )),
        None => Ok(()),
    }
}

/// Checks against what a known model accepts.
fn model_checks(
    p: &GenerationParams,
    spec: &ModelSpec,
    catalog: &Catalog,
) -> Result<(), ValidationError> {
    let model = spec.name.as_str();
    for f in p.set_fields() {
        if !spec.accepts(f) {
            return Err(err(
                f.wire_name(),
                format!(
                    "{model} does not take {f} (it is taken by: {})",
                    takers(catalog, f)
                ),
            ));
        }
    }
    let chars = p.prompt.chars().count();
    if chars > spec.prompt_max_chars {
        return Err(err(
            "prompt",
            format!(
                "{chars} characters is too long for {model}: at most {}",
                spec.prompt_max_chars
            ),
        ));
    }
    if p.n > spec.n_max {
        return Err(err(
            "n",
            format!(
                "{model} makes at most {} image(s) a request, not {}",
                spec.n_max, p.n
            ),
        ));
    }
    if let Some(size) = &p.size
        && !spec.sizes.iter().any(|s| s == size)
    {
        match (&spec.flexible_size, catalog::parse_size(size)) {
            (Some(rule), Some((w, h))) => catalog::check_flexible(rule, w, h)
                .map_err(|why| err("size", format!("{size} is not allowed for {model}: {why}")))?,
            _ => one_of("size", size, &spec.sizes, model)?,
        }
    }
    if let Some(q) = &p.quality {
        one_of("quality", q, &spec.qualities, model)?;
    }
    if let Some(s) = &p.style {
        one_of("style", s, &spec.styles, model)?;
    }
    if let Some(f) = &p.output_format {
        one_of("output_format", f, &spec.output_formats, model)?;
    }
    if let Some(b) = &p.background {
        one_of("background", b, &spec.backgrounds, model)?;
        if b == "transparent" && p.expected_format() == "jpeg" {
            return Err(err(
                "background",
                "a transparent background needs output_format png or webp, not jpeg",
            ));
        }
    }
    if p.output_compression.is_some() && !matches!(p.expected_format(), "jpeg" | "webp") {
        return Err(err(
            "output_compression",
            "compression applies to jpeg and webp only: add --format jpeg or --format webp",
        ));
    }
    if let Some(m) = &p.moderation {
        one_of("moderation", m, &spec.moderations, model)?;
    }
    if let Some(r) = &p.response_format {
        one_of("response_format", r, &spec.response_formats, model)?;
    }
    Ok(())
}

/// The JSON body: prompt, model, and only the fields the user set.
fn body(p: &GenerationParams, model: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("prompt".into(), json!(p.prompt));
    m.insert("model".into(), json!(model));
    if p.n != 1 {
        m.insert("n".into(), json!(p.n));
    }
    let strings = [
        ("size", &p.size),
        ("quality", &p.quality),
        ("background", &p.background),
        ("output_format", &p.output_format),
        ("moderation", &p.moderation),
        ("style", &p.style),
        ("response_format", &p.response_format),
        ("user", &p.user),
        ("input_fidelity", &p.input_fidelity),
    ];
    for (k, v) in strings {
        if let Some(v) = v {
            m.insert(k.into(), json!(v));
        }
    }
    if let Some(c) = p.output_compression {
        m.insert("output_compression".into(), json!(c));
    }
    if p.stream {
        m.insert("stream".into(), json!(true));
        if let Some(k) = p.partial_images {
            m.insert("partial_images".into(), json!(k));
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(model: &str) -> GenerationParams {
        GenerationParams {
            prompt: "a lighthouse at dusk".into(),
            model: model.into(),
            ..Default::default()
        }
    }

    fn run(p: &GenerationParams) -> Result<CheckedRequest, ValidationError> {
        check(p, &Catalog::builtin(), &ProviderRules::default())
    }

    #[test]
    fn refusals_name_the_field() {
        type Edit = fn(&mut GenerationParams);
        let cases: &[(&str, Edit, &str, &str)] = &[
            (
                "gpt-image-2",
                |p| p.style = Some("vivid".into()),
                "style",
                "dall-e-3",
            ),
            (
                "gpt-image-2",
                |p| p.response_format = Some("url".into()),
                "response_format",
                "dall-e-2",
            ),
            (
                "gpt-image-2",
                |p| p.size = Some("1000x1000".into()),
                "size",
                "multiples of 16",
            ),
            (
                "gpt-image-1.5",
                |p| p.size = Some("2048x2048".into()),
                "size",
                "1024x1536",
            ),
            (
                "gpt-image-2",
                |p| p.quality = Some("hd".into()),
                "quality",
                "low, medium, high",
            ),
            ("dall-e-3", |p| p.n = 2, "n", "at most 1"),
            (
                "dall-e-3",
                |p| p.stream = true,
                "stream",
                "does not take stream",
            ),
            (
                "dall-e-2",
                |p| p.prompt = "x".repeat(1001),
                "prompt",
                "at most 1000",
            ),
            ("gpt-image-2", |p| p.n = 11, "n", "1 to 10"),
            ("gpt-image-2", |p| p.n = 0, "n", "1 to 10"),
            ("gpt-image-2", |p| p.prompt = "  ".into(), "prompt", "empty"),
            (
                "gpt-image-2",
                |p| {
                    p.background = Some("transparent".into());
                    p.output_format = Some("jpeg".into())
                },
                "background",
                "png or webp",
            ),
            (
                "gpt-image-2",
                |p| p.output_compression = Some(50),
                "output_compression",
                "jpeg and webp",
            ),
            (
                "gpt-image-2",
                |p| {
                    p.output_format = Some("webp".into());
                    p.output_compression = Some(101)
                },
                "output_compression",
                "0 to 100",
            ),
            (
                "gpt-image-2",
                |p| p.partial_images = Some(2),
                "partial_images",
                "streaming",
            ),
            (
                "gpt-image-2",
                |p| {
                    p.stream = true;
                    p.partial_images = Some(4)
                },
                "partial_images",
                "0 to 3",
            ),
            (
                "gpt-image-2",
                |p| {
                    p.stream = true;
                    p.n = 2
                },
                "stream",
                "n = 1",
            ),
            (
                "gpt-image-2",
                |p| p.output_format = Some("gif".into()),
                "output_format",
                "png, jpeg, webp",
            ),
            (
                "unknown-model",
                |p| p.size = Some("big".into()),
                "size",
                "WIDTHxHEIGHT",
            ),
        ];
        for (model, edit, field, needle) in cases {
            let mut p = params(model);
            edit(&mut p);
            let e = run(&p).expect_err(&format!("{model} {p:?} should be refused"));
            assert_eq!(e.field, *field, "{model}: {e}");
            assert!(
                e.to_string().contains(needle),
                "{model}: {e} lacks {needle:?}"
            );
        }
    }

    #[test]
    fn accepted_bodies_carry_only_what_was_set() {
        let mut p = params("gpt-image-2");
        p.size = Some("2048x1152".into());
        p.quality = Some("high".into());
        p.output_format = Some("webp".into());
        p.output_compression = Some(80);
        p.stream = true;
        p.partial_images = Some(2);
        let c = run(&p).unwrap();
        let keys: Vec<&str> = c.body.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "model",
                "output_compression",
                "output_format",
                "partial_images",
                "prompt",
                "quality",
                "size",
                "stream"
            ]
        );
        assert!(c.warnings.is_empty());
        let d = run(&params("dall-e-3")).unwrap();
        // Shutdown dates warn on the openai provider only (see Catalog::openai_shutdown_warning).
        assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    }

    #[test]
    fn unknown_model_is_sent_with_a_warning() {
        let mut p = params("grok-imagine-image");
        p.style = Some("anything".into());
        let c = run(&p).unwrap();
        assert!(!c.known_model);
        assert_eq!(c.body["model"], "grok-imagine-image");
        assert!(c.warnings[0].contains("not in the model catalogue"));
    }

    #[test]
    fn dialect_rules_unknown_models() {
        let dalle = ProviderRules {
            name: "local".into(),
            dialect: Some(Dialect::Dalle),
            fields: None,
            variations: false,
        };
        let mut p = params("stablediffusion");
        p.stream = true;
        let e = check(&p, &Catalog::builtin(), &dalle).unwrap_err();
        assert_eq!(e.field, "stream");
        let gpt = ProviderRules {
            name: "x".into(),
            dialect: Some(Dialect::Gpt),
            fields: None,
            variations: false,
        };
        let mut p = params("future-model");
        p.style = Some("vivid".into());
        assert_eq!(
            check(&p, &Catalog::builtin(), &gpt).unwrap_err().field,
            "style"
        );
        p.style = None;
        p.background = Some("transparent".into());
        assert!(check(&p, &Catalog::builtin(), &gpt).is_ok());
    }

    #[test]
    fn edits_and_variations_are_planned_or_refused() {
        use crate::api::edit::{Endpoint, InputImage};
        let pic = |n: usize| -> Vec<InputImage> {
            (0..n)
                .map(|k| InputImage::file(format!("/p/{k}.png")))
                .collect()
        };
        let dalle = ProviderRules {
            name: "local".into(),
            dialect: Some(Dialect::Dalle),
            fields: None,
            variations: true,
        };
        // An edit: multipart files, fidelity in the body, moderation left out with a warning.
        let mut p = params("gpt-image-1.5");
        p.images = pic(3);
        p.mask = Some(InputImage::file("/p/mask.png"));
        p.input_fidelity = Some("high".into());
        p.moderation = Some("low".into());
        let c = run(&p).unwrap();
        let files = c.edit.as_ref().unwrap();
        assert_eq!(files.endpoint, Endpoint::Edits);
        assert_eq!(files.image_field, "image[]");
        assert_eq!(files.images.len(), 3);
        assert_eq!(c.body["input_fidelity"], "high");
        assert!(c.body.get("moderation").is_none());
        assert!(
            c.warnings.iter().any(|w| w.contains("moderation")),
            "{:?}",
            c.warnings
        );
        // A variation: no prompt, only n/size/response_format/user.
        let mut v = params("dall-e-2");
        v.prompt.clear();
        v.images = pic(1);
        v.variation = true;
        v.n = 2;
        let c = check(&v, &Catalog::builtin(), &dalle).unwrap();
        assert_eq!(c.endpoint(), Endpoint::Variations);
        let keys: Vec<&str> = c.body.keys().map(String::as_str).collect();
        assert_eq!(keys, ["model", "n"]);
        assert_eq!(c.edit.unwrap().image_field, "image");

        type Edit = fn(&mut GenerationParams);
        let cases: &[(&str, Edit, &str, &str)] = &[
            (
                "gpt-image-2",
                |p| p.images = vec![InputImage::file("/a.png"); 17],
                "image",
                "at most 16",
            ),
            (
                "dall-e-2",
                |p| p.images = vec![InputImage::file("/a.png"); 2],
                "image",
                "at most 1",
            ),
            (
                "dall-e-3",
                |p| p.images = vec![InputImage::file("/a.png")],
                "image",
                "does not edit",
            ),
            (
                "gpt-image-1-mini",
                |p| {
                    p.images = vec![InputImage::file("/a.png")];
                    p.input_fidelity = Some("high".into())
                },
                "input_fidelity",
                "does not take input_fidelity",
            ),
            (
                "gpt-image-2",
                |p| {
                    p.images = vec![InputImage::file("/a.png")];
                    p.input_fidelity = Some("medium".into())
                },
                "input_fidelity",
                "high or low",
            ),
            (
                "gpt-image-2",
                |p| p.input_fidelity = Some("high".into()),
                "input_fidelity",
                "edits only",
            ),
            (
                "gpt-image-2",
                |p| p.mask = Some(InputImage::file("/m.png")),
                "mask",
                "--image",
            ),
            (
                "gpt-image-2",
                |p| {
                    p.images = vec![InputImage::file("/a.png")];
                    p.variation = true
                },
                "variation",
                "GPT image model",
            ),
            (
                "dall-e-2",
                |p| {
                    p.images = vec![InputImage::file("/a.png")];
                    p.variation = true
                },
                "variation",
                "does not offer variations",
            ),
        ];
        for (model, edit, field, needle) in cases {
            let mut p = params(model);
            edit(&mut p);
            let e = run(&p).expect_err(&format!("{model} {p:?} should be refused"));
            assert_eq!(e.field, *field, "{model}: {e}");
            assert!(
                e.to_string().contains(needle),
                "{model}: {e} lacks {needle:?}"
            );
        }
        // A variation with a mask or a quality is refused even where variations are offered.
        let mut bad = v.clone();
        bad.quality = Some("standard".into());
        assert_eq!(
            check(&bad, &Catalog::builtin(), &dalle).unwrap_err().field,
            "quality"
        );
    }

    #[test]
    fn edit_fields_survive_serde_and_old_params_still_read() {
        use crate::api::edit::InputImage;
        let old = r#"{"prompt":"x","model":"gpt-image-2","n":1}"#;
        let p: GenerationParams = serde_json::from_str(old).unwrap();
        assert!(p.images.is_empty() && p.mask.is_none() && !p.variation);
        // A generation writes none of the new keys.
        let value = serde_json::to_value(&p).unwrap();
        for key in ["images", "mask", "input_fidelity", "variation"] {
            assert!(value.get(key).is_none(), "{value}");
        }
        let mut e = p.clone();
        e.images = vec![InputImage {
            path: "/a.png".into(),
            record: Some("0190".into()),
            index: Some(2),
        }];
        e.input_fidelity = Some("low".into());
        let back: GenerationParams =
            serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn provider_field_list_is_enforced() {
        let rules = ProviderRules {
            name: "xai".into(),
            dialect: Some(Dialect::Dalle),
            fields: Some(vec![Field::N, Field::ResponseFormat]),
            variations: false,
        };
        let mut p = params("grok-imagine-image");
        p.size = Some("1024x1024".into());
        let e = check(&p, &Catalog::builtin(), &rules).unwrap_err();
        assert_eq!(e.field, "size");
        assert!(e.message.contains("provider xai"));
        p.size = None;
        p.n = 3;
        assert!(check(&p, &Catalog::builtin(), &rules).is_ok());
    }
}
