//! What each model accepts, and what it costs: a table of data, overridable from the config,
//! and the checks that run on a request before anything is sent.
//!
//! Model facts change often (models are launched and shut down every few months), so they live
//! here as data rather than scattered through the client.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The two request dialects of the Images API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    /// GPT image models: always base64, `output_format`, `background`, streaming.
    #[default]
    Gpt,
    /// The DALL·E dialect that compatible servers still speak: `response_format`, `style`.
    Dalle,
}

/// An optional request field, as named on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    N,
    Size,
    Quality,
    Background,
    OutputFormat,
    OutputCompression,
    Moderation,
    Style,
    ResponseFormat,
    Stream,
    PartialImages,
    User,
}

impl Field {
    pub const ALL: [Field; 12] = [
        Field::N,
        Field::Size,
        Field::Quality,
        Field::Background,
        Field::OutputFormat,
        Field::OutputCompression,
        Field::Moderation,
        Field::Style,
        Field::ResponseFormat,
        Field::Stream,
        Field::PartialImages,
        Field::User,
    ];

    pub fn wire_name(self) -> &'static str {
        match self {
            Field::N => "n",
            Field::Size => "size",
            Field::Quality => "quality",
            Field::Background => "background",
            Field::OutputFormat => "output_format",
            Field::OutputCompression => "output_compression",
            Field::Moderation => "moderation",
            Field::Style => "style",
            Field::ResponseFormat => "response_format",
            Field::Stream => "stream",
            Field::PartialImages => "partial_images",
            Field::User => "user",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.wire_name())
    }
}

/// Free-form sizes (gpt-image-2): any `WxH` inside these bounds, besides the listed presets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlexibleSize {
    /// Both sides must be multiples of this.
    pub multiple_of: u32,
    /// Longest side divided by shortest side may be at most this (3.0 means 1:3 to 3:1).
    pub max_aspect: f64,
    /// Neither side may exceed this.
    pub max_edge: u32,
    /// Width × height may not exceed this.
    pub max_pixels: u64,
}

/// Prices used for the cost estimate, in US dollars.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Pricing {
    /// Per million text input tokens.
    pub text_input_per_m: Option<f64>,
    /// Per million image input tokens.
    pub image_input_per_m: Option<f64>,
    /// Per million image output tokens.
    pub image_output_per_m: Option<f64>,
    /// Output tokens for one 1024×1024 image, by quality, to estimate before the answer.
    pub output_tokens_1024: BTreeMap<String, u64>,
    /// Per-image prices by "quality@size" (or "quality" for any size), when no usage is returned.
    pub per_image: BTreeMap<String, f64>,
}

/// Everything the client needs to know about one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    pub name: String,
    pub dialect: Dialect,
    /// Fields this model takes. Anything else is refused before sending.
    pub fields: Vec<Field>,
    /// Allowed `size` values (may include "auto").
    pub sizes: Vec<String>,
    pub flexible_size: Option<FlexibleSize>,
    pub qualities: Vec<String>,
    pub n_max: u8,
    pub prompt_max_chars: usize,
    pub styles: Vec<String>,
    pub output_formats: Vec<String>,
    pub backgrounds: Vec<String>,
    pub moderations: Vec<String>,
    pub response_formats: Vec<String>,
    pub pricing: Pricing,
    /// Shown as a warning when the model is used (for example an announced shutdown).
    pub note: Option<String>,
}

impl ModelSpec {
    pub fn accepts(&self, field: Field) -> bool {
        self.fields.contains(&field)
    }
}

/// A partial model description from the config file: every key is optional and replaces the
/// built-in value; `like` names the model to start from when declaring a new one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelOverride {
    pub like: Option<String>,
    pub dialect: Option<Dialect>,
    pub fields: Option<Vec<Field>>,
    pub sizes: Option<Vec<String>>,
    pub flexible_size: Option<FlexibleSize>,
    pub qualities: Option<Vec<String>>,
    pub n_max: Option<u8>,
    pub prompt_max_chars: Option<usize>,
    pub styles: Option<Vec<String>>,
    pub output_formats: Option<Vec<String>>,
    pub backgrounds: Option<Vec<String>>,
    pub moderations: Option<Vec<String>>,
    pub response_formats: Option<Vec<String>>,
    pub pricing: Option<Pricing>,
    pub note: Option<String>,
}

/// The model catalogue: built-in data plus the config's overrides.
#[derive(Debug, Clone, PartialEq)]
pub struct Catalog {
    models: BTreeMap<String, ModelSpec>,
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_string()).collect()
}

fn gpt_model(name: &str, pricing: Pricing, note: Option<&str>) -> ModelSpec {
    use Field::*;
    ModelSpec {
        name: name.to_string(),
        dialect: Dialect::Gpt,
        fields: vec![
            N,
            Size,
            Quality,
            Background,
            OutputFormat,
            OutputCompression,
            Moderation,
            Stream,
            PartialImages,
            User,
        ],
        sizes: strings(&["auto", "1024x1024", "1536x1024", "1024x1536"]),
        flexible_size: None,
        qualities: strings(&["auto", "low", "medium", "high"]),
        n_max: 10,
        prompt_max_chars: 32_000,
        styles: vec![],
        output_formats: strings(&["png", "jpeg", "webp"]),
        backgrounds: strings(&["auto", "transparent", "opaque"]),
        moderations: strings(&["auto", "low"]),
        response_formats: vec![],
        pricing,
        note: note.map(str::to_string),
    }
}

fn token_pricing(text_in: f64, image_in: f64, image_out: f64) -> Pricing {
    Pricing {
        text_input_per_m: Some(text_in),
        image_input_per_m: Some(image_in),
        image_output_per_m: Some(image_out),
        output_tokens_1024: [("low", 272), ("medium", 1056), ("high", 4160)]
            .into_iter()
            .map(|(q, t)| (q.to_string(), t))
            .collect(),
        per_image: BTreeMap::new(),
    }
}

fn per_image(prices: &[(&str, f64)]) -> Pricing {
    Pricing {
        per_image: prices.iter().map(|(k, v)| ((*k).to_string(), *v)).collect(),
        ..Pricing::default()
    }
}

/// The model used when nothing else is chosen.
pub const DEFAULT_MODEL: &str = "gpt-image-2";

impl Catalog {
    /// The built-in table, as of late 2026 (see docs/models.md for sources).
    pub fn builtin() -> Catalog {
        let mut models = BTreeMap::new();
        let mut gpt2 = gpt_model("gpt-image-2", token_pricing(5.0, 8.0, 30.0), None);
        gpt2.flexible_size = Some(FlexibleSize {
            multiple_of: 16,
            max_aspect: 3.0,
            max_edge: 3840,
            max_pixels: 3840 * 2160,
        });
        let mut gpt2_dated = gpt2.clone();
        gpt2_dated.name = "gpt-image-2-2026-04-21".into();
        let shutdown = Some("OpenAI shuts this model down on 2026-12-01; gpt-image-2 replaces it");
        let gpt15 = gpt_model("gpt-image-1.5", token_pricing(5.0, 8.0, 32.0), shutdown);
        let mut mini = gpt_model("gpt-image-1-mini", token_pricing(2.0, 2.5, 8.0), shutdown);
        mini.pricing.per_image = [
            ("low@1024x1024", 0.005),
            ("medium@1024x1024", 0.011),
            ("high@1024x1024", 0.036),
            ("low", 0.006),
            ("medium", 0.015),
            ("high", 0.052),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();

        use Field::*;
        let dalle3 = ModelSpec {
            name: "dall-e-3".into(),
            dialect: Dialect::Dalle,
            fields: vec![N, Size, Quality, Style, ResponseFormat, User],
            sizes: strings(&["1024x1024", "1792x1024", "1024x1792"]),
            flexible_size: None,
            qualities: strings(&["standard", "hd"]),
            n_max: 1,
            prompt_max_chars: 4000,
            styles: strings(&["vivid", "natural"]),
            output_formats: vec![],
            backgrounds: vec![],
            moderations: vec![],
            response_formats: strings(&["url", "b64_json"]),
            pricing: per_image(&[
                ("standard@1024x1024", 0.04),
                ("standard", 0.08),
                ("hd@1024x1024", 0.08),
                ("hd", 0.12),
            ]),
            note: Some(
                "OpenAI shut dall-e-3 down on 2026-05-12; compatible servers still serve it".into(),
            ),
        };
        let dalle2 = ModelSpec {
            name: "dall-e-2".into(),
            dialect: Dialect::Dalle,
            fields: vec![N, Size, Quality, ResponseFormat, User],
            sizes: strings(&["256x256", "512x512", "1024x1024"]),
            flexible_size: None,
            qualities: strings(&["standard"]),
            n_max: 10,
            prompt_max_chars: 1000,
            styles: vec![],
            output_formats: vec![],
            backgrounds: vec![],
            moderations: vec![],
            response_formats: strings(&["url", "b64_json"]),
            pricing: per_image(&[
                ("standard@256x256", 0.016),
                ("standard@512x512", 0.018),
                ("standard@1024x1024", 0.02),
            ]),
            note: Some(
                "OpenAI shut dall-e-2 down on 2026-05-12; compatible servers still serve it".into(),
            ),
        };
        for spec in [gpt2, gpt2_dated, gpt15, mini, dalle3, dalle2] {
            models.insert(spec.name.clone(), spec);
        }
        Catalog { models }
    }

    /// The built-in table with the config's `[models.NAME]` tables applied.
    pub fn with_overrides(overrides: &BTreeMap<String, ModelOverride>) -> Result<Catalog, String> {
        let mut catalog = Catalog::builtin();
        for (name, o) in overrides {
            let base = match (&o.like, catalog.models.get(name)) {
                (Some(like), _) => catalog.models.get(like).cloned().ok_or_else(|| {
                    format!(
                        "[models.\"{name}\"] says like = \"{like}\", but no model of that name is known (known: {})",
                        catalog.names().join(", ")
                    )
                })?,
                (None, Some(existing)) => existing.clone(),
                (None, None) => {
                    return Err(format!(
                        "[models.\"{name}\"] is not a built-in model: add like = \"gpt-image-2\" (or another known model) to say what it resembles"
                    ));
                }
            };
            let mut spec = base;
            spec.name = name.clone();
            macro_rules! apply {
                ($($f:ident),*) => { $( if let Some(v) = &o.$f { spec.$f = v.clone(); } )* };
            }
            apply!(
                dialect,
                fields,
                sizes,
                qualities,
                n_max,
                prompt_max_chars,
                styles,
                output_formats,
                backgrounds,
                moderations,
                response_formats,
                pricing
            );
            if o.flexible_size.is_some() {
                spec.flexible_size = o.flexible_size.clone();
            }
            if o.note.is_some() {
                spec.note = o.note.clone();
            }
            catalog.models.insert(name.clone(), spec);
        }
        Ok(catalog)
    }

    pub fn get(&self, name: &str) -> Option<&ModelSpec> {
        self.models.get(name)
    }

    pub fn names(&self) -> Vec<&str> {
        self.models.keys().map(String::as_str).collect()
    }

    pub fn models(&self) -> impl Iterator<Item = &ModelSpec> {
        self.models.values()
    }
}

/// Parse `WxH` into (width, height).
pub fn parse_size(size: &str) -> Option<(u32, u32)> {
    let (w, h) = size.trim().split_once(['x', 'X', '×'])?;
    let w: u32 = w.trim().parse().ok()?;
    let h: u32 = h.trim().parse().ok()?;
    (w > 0 && h > 0).then_some((w, h))
}

/// Check a `WxH` size against a flexible rule; the error says which bound it breaks.
pub fn check_flexible(rule: &FlexibleSize, w: u32, h: u32) -> Result<(), String> {
    let m = rule.multiple_of.max(1);
    if !w.is_multiple_of(m) || !h.is_multiple_of(m) {
        return Err(format!("both sides must be multiples of {m}"));
    }
    if w > rule.max_edge || h > rule.max_edge {
        return Err(format!("no side may exceed {} pixels", rule.max_edge));
    }
    if u64::from(w) * u64::from(h) > rule.max_pixels {
        return Err(format!(
            "at most {} pixels in all (3840x2160)",
            rule.max_pixels
        ));
    }
    let (long, short) = (w.max(h) as f64, w.min(h) as f64);
    if long / short > rule.max_aspect + 1e-9 {
        return Err(format!(
            "the aspect ratio must be between 1:{0} and {0}:1",
            rule.max_aspect
        ));
    }
    Ok(())
}

/// The estimated cost in US dollars of `n` images of `size` at `quality`, before sending,
/// from the model's per-image table or its token prices.
pub fn estimate_cost(
    spec: &ModelSpec,
    prompt: &str,
    n: u32,
    size: &str,
    quality: &str,
) -> Option<f64> {
    let size = if size == "auto" || size.is_empty() {
        "1024x1024"
    } else {
        size
    };
    let quality = match quality {
        "" | "auto" => spec
            .qualities
            .iter()
            .find(|q| *q == "medium" || *q == "standard")
            .map(String::as_str)
            .unwrap_or("medium"),
        q => q,
    };
    let p = &spec.pricing;
    let n = f64::from(n.max(1));
    if let Some(v) = p.per_image.get(&format!("{quality}@{size}")) {
        return Some(v * n);
    }
    // A per-quality price (for the sizes not listed above) beats a token estimate.
    if let Some(v) = p.per_image.get(quality) {
        return Some(v * n);
    }
    if let (Some(out_price), Some(tokens)) =
        (p.image_output_per_m, p.output_tokens_1024.get(quality))
    {
        let (w, h) = parse_size(size).unwrap_or((1024, 1024));
        let scale = (f64::from(w) * f64::from(h)) / (1024.0 * 1024.0);
        let out_tokens = *tokens as f64 * scale;
        // Roughly four characters a token for the prompt's text.
        let text_tokens = prompt.chars().count() as f64 / 4.0;
        let text = p.text_input_per_m.unwrap_or(0.0) * text_tokens / 1e6;
        return Some(text + out_price * out_tokens * n / 1e6);
    }
    None
}

/// Cost from the usage a server reported: tokens × the model's prices.
pub fn cost_from_usage(spec: &ModelSpec, usage: &crate::api::Usage) -> Option<f64> {
    let p = &spec.pricing;
    let out = p.image_output_per_m?;
    let (text_in, image_in) = match &usage.input_tokens_details {
        Some(d) => (d.text_tokens.unwrap_or(0), d.image_tokens.unwrap_or(0)),
        None => (usage.input_tokens.unwrap_or(0), 0),
    };
    let output = usage.output_tokens.unwrap_or(0);
    Some(
        (text_in as f64 * p.text_input_per_m.unwrap_or(0.0)
            + image_in as f64 * p.image_input_per_m.unwrap_or(0.0)
            + output as f64 * out)
            / 1e6,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_has_the_models_the_issue_names() {
        let c = Catalog::builtin();
        for m in [
            "gpt-image-2",
            "gpt-image-1.5",
            "gpt-image-1-mini",
            "dall-e-3",
            "dall-e-2",
        ] {
            assert!(c.get(m).is_some(), "{m}");
        }
        assert!(c.get(DEFAULT_MODEL).is_some());
    }

    #[test]
    fn flexible_sizes() {
        let c = Catalog::builtin();
        let rule = c
            .get("gpt-image-2")
            .and_then(|s| s.flexible_size.clone())
            .unwrap();
        let cases: &[(u32, u32, bool)] = &[
            (1024, 1024, true),
            (3840, 2160, true),
            (2160, 3840, true),
            (3840, 1280, true),  // exactly 3:1
            (3840, 1264, false), // wider than 3:1
            (1000, 1000, false), // not multiples of 16
            (4096, 1024, false), // edge too long
            (3840, 2176, false), // too many pixels
            (16, 48, true),
        ];
        for (w, h, ok) in cases {
            assert_eq!(check_flexible(&rule, *w, *h).is_ok(), *ok, "{w}x{h}");
        }
    }

    #[test]
    fn parse_sizes() {
        assert_eq!(parse_size("1536x1024"), Some((1536, 1024)));
        assert_eq!(parse_size("auto"), None);
        assert_eq!(parse_size("0x5"), None);
        assert_eq!(parse_size("12 x 34"), Some((12, 34)));
    }

    #[test]
    fn estimates() {
        let c = Catalog::builtin();
        let mini = c.get("gpt-image-1-mini").unwrap();
        assert_eq!(estimate_cost(mini, "x", 2, "1024x1024", "low"), Some(0.01));
        let d3 = c.get("dall-e-3").unwrap();
        assert_eq!(estimate_cost(d3, "x", 1, "1792x1024", "hd"), Some(0.12));
        let g2 = c.get("gpt-image-2").unwrap();
        let high = estimate_cost(g2, "a cat", 1, "1024x1024", "high").unwrap();
        let low = estimate_cost(g2, "a cat", 1, "1024x1024", "low").unwrap();
        assert!(high > low * 10.0, "{high} vs {low}");
        assert!((high - 4160.0 * 30.0 / 1e6).abs() < 0.001);
    }

    #[test]
    fn overrides_merge_and_declare() {
        let mut o = BTreeMap::new();
        o.insert(
            "gpt-image-2".to_string(),
            ModelOverride {
                n_max: Some(4),
                ..Default::default()
            },
        );
        o.insert(
            "my-local".to_string(),
            ModelOverride {
                like: Some("dall-e-2".into()),
                sizes: Some(vec!["640x480".into()]),
                ..Default::default()
            },
        );
        let c = Catalog::with_overrides(&o).unwrap();
        assert_eq!(c.get("gpt-image-2").unwrap().n_max, 4);
        assert_eq!(c.get("gpt-image-2").unwrap().qualities.len(), 4);
        assert_eq!(c.get("my-local").unwrap().dialect, Dialect::Dalle);
        let mut bad = BTreeMap::new();
        bad.insert("nope".to_string(), ModelOverride::default());
        assert!(
            Catalog::with_overrides(&bad)
                .unwrap_err()
                .contains("like =")
        );
    }
}
