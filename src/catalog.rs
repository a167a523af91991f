//! What each model accepts, and what it costs: a table of data, overridable from the config,
//! and the checks that run on a request before anything is sent.
//!
//! Model facts change often (models are launched and shut down every few months), so they live
//! here as data rather than scattered through the client.

use chrono::NaiveDate;
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
    /// Edits only: how closely to keep the input images' features (`high` or `low`).
    InputFidelity,
}

impl Field {
    pub const ALL: [Field; 13] = [
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
        Field::InputFidelity,
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
            Field::InputFidelity => "input_fidelity",
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
    /// Shown as a warning whenever the model is used, on any provider.
    pub note: Option<String>,
    /// The day OpenAI shut (or shuts) the model down, `YYYY-MM-DD`. Compatible servers may still
    /// serve the name, so only the openai provider warns about it.
    #[serde(default)]
    pub shutdown: Option<String>,
    /// Known from third parties (gateways, client projects), not from OpenAI's SDKs or its
    /// published API description: its values (such as `xhigh`) may go beyond that description.
    #[serde(default)]
    pub reported_by_third_parties: bool,
    /// The most input images one edit (`POST /images/edits`) takes; 0 when the model does not
    /// edit. None: what the dialect allows (16 for GPT image models, 1 for the DALL·E dialect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edit_images_max: Option<u8>,
}

impl ModelSpec {
    pub fn accepts(&self, field: Field) -> bool {
        self.fields.contains(&field)
    }

    /// The most input images one edit takes (0: the model does not edit).
    pub fn edit_images(&self) -> u8 {
        self.edit_images_max
            .unwrap_or_else(|| dialect_edit_images(self.dialect))
    }

    /// The shutdown date, when the catalogue has one (and it is a date).
    pub fn shutdown_date(&self) -> Option<NaiveDate> {
        self.shutdown
            .as_deref()
            .and_then(|d| NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d").ok())
    }

    /// Whether OpenAI no longer serves the model on `today`.
    pub fn is_shut_down(&self, today: NaiveDate) -> bool {
        self.shutdown_date().is_some_and(|d| d <= today)
    }

    /// How to mark the model in lists: "shut down (2026-12-01)", "shuts down 2027-03-01", or
    /// nothing for a model in service.
    pub fn lifecycle_label(&self, today: NaiveDate) -> Option<String> {
        let date = self.shutdown_date()?;
        Some(if date <= today {
            format!("shut down ({date})")
        } else {
            format!("shuts down {date}")
        })
    }

    /// The warning to show before a request with this model goes to OpenAI itself (not to a
    /// compatible server, which may still serve the name).
    pub fn openai_shutdown_warning(&self, today: NaiveDate) -> Option<String> {
        let date = self.shutdown_date()?;
        let name = &self.name;
        Some(if date <= today {
            format!(
                "{name} was shut down by OpenAI on {date}: OpenAI will refuse the request; use {DEFAULT_MODEL} instead"
            )
        } else {
            format!("{name} is shut down by OpenAI on {date}: move to {DEFAULT_MODEL} before then")
        })
    }
}

/// The most input images an edit takes in a dialect: 16 for GPT image models, one square PNG
/// for the DALL·E dialect.
pub fn dialect_edit_images(dialect: Dialect) -> u8 {
    match dialect {
        Dialect::Gpt => 16,
        Dialect::Dalle => 1,
    }
}

/// Today's date (UTC), to compare with shutdown dates.
pub fn today() -> NaiveDate {
    chrono::Utc::now().date_naive()
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
    /// `YYYY-MM-DD`, or "" to clear a built-in date.
    pub shutdown: Option<String>,
    pub reported_by_third_parties: Option<bool>,
    /// The most input images one edit takes (0: the model does not edit).
    pub edit_images_max: Option<u8>,
}

/// The model catalogue: built-in data plus the config's overrides.
#[derive(Debug, Clone, PartialEq)]
pub struct Catalog {
    models: BTreeMap<String, ModelSpec>,
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_string()).collect()
}

fn gpt_model(name: &str, pricing: Pricing, shutdown: Option<&str>) -> ModelSpec {
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
            InputFidelity,
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
        note: None,
        shutdown: shutdown.map(str::to_string),
        reported_by_third_parties: false,
        edit_images_max: None,
    }
}

/// Output tokens of one 1024×1024 image by quality (see docs/models.md for the sources).
/// The gpt-image-1 family (1, 1.5, mini).
const TOKENS_GPT_IMAGE_1: &[(&str, u64)] = &[("low", 272), ("medium", 1056), ("high", 4160)];
/// gpt-image-2: not gpt-image-1's table (that underestimates medium and high about 1.7×).
const TOKENS_GPT_IMAGE_2: &[(&str, u64)] = &[("low", 196), ("medium", 1756), ("high", 7024)];
/// gpt-image-2.5-flare and -sunburst, with their two extra qualities.
const TOKENS_GPT_IMAGE_2_5: &[(&str, u64)] = &[
    ("low", 196),
    ("medium", 439),
    ("high", 1756),
    ("xhigh", 3122),
    ("max", 7024),
];

fn token_pricing(text_in: f64, image_in: f64, image_out: f64, tokens: &[(&str, u64)]) -> Pricing {
    Pricing {
        text_input_per_m: Some(text_in),
        image_input_per_m: Some(image_in),
        image_output_per_m: Some(image_out),
        output_tokens_1024: tokens.iter().map(|(q, t)| ((*q).to_string(), *t)).collect(),
        per_image: BTreeMap::new(),
    }
}

/// A model under another name (a dated id, an alias): the same facts.
fn renamed(spec: &ModelSpec, name: &str) -> ModelSpec {
    ModelSpec {
        name: name.to_string(),
        ..spec.clone()
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
    /// The built-in table, as of 2026-12-02 (see docs/models.md for sources).
    pub fn builtin() -> Catalog {
        let mut models = BTreeMap::new();
        let flexible = FlexibleSize {
            multiple_of: 16,
            max_aspect: 3.0,
            max_edge: 3840,
            max_pixels: 3840 * 2160,
        };
        let mut gpt2 = gpt_model(
            "gpt-image-2",
            token_pricing(5.0, 8.0, 30.0, TOKENS_GPT_IMAGE_2),
            None,
        );
        gpt2.flexible_size = Some(flexible.clone());
        let gpt2_dated = renamed(&gpt2, "gpt-image-2-2026-04-21");
        // Reported by third parties (gateways, client projects), not yet by OpenAI's SDKs.
        let mut flare = gpt_model(
            "gpt-image-2.5-flare",
            token_pricing(5.0, 8.0, 30.0, TOKENS_GPT_IMAGE_2_5),
            None,
        );
        flare.flexible_size = Some(flexible);
        flare.qualities = strings(&["auto", "low", "medium", "high", "xhigh", "max"]);
        flare.reported_by_third_parties = true;
        let flare_dated = renamed(&flare, "gpt-image-2.5-flare-2026-09-08");
        let sunburst = renamed(&flare, "gpt-image-2.5-sunburst");
        let sunburst_dated = renamed(&flare, "gpt-image-2.5-sunburst-2026-09-08");

        let dec1 = Some("2026-12-01");
        let gpt15 = gpt_model(
            "gpt-image-1.5",
            token_pricing(5.0, 8.0, 32.0, TOKENS_GPT_IMAGE_1),
            dec1,
        );
        let gpt15_dated = renamed(&gpt15, "gpt-image-1.5-2025-12-16");
        let chatgpt_latest = renamed(&gpt15, "chatgpt-image-latest");
        let mut gpt1 = gpt_model(
            "gpt-image-1",
            token_pricing(5.0, 10.0, 40.0, TOKENS_GPT_IMAGE_1),
            Some("2026-10-23"),
        );
        gpt1.pricing.per_image = [
            ("low@1024x1024", 0.011),
            ("medium@1024x1024", 0.042),
            ("high@1024x1024", 0.167),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let mut mini = gpt_model(
            "gpt-image-1-mini",
            token_pricing(2.0, 2.5, 8.0, TOKENS_GPT_IMAGE_1),
            dec1,
        );
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
        // input_fidelity is not taken by gpt-image-1-mini (the contract says so).
        mini.fields.retain(|f| *f != Field::InputFidelity);

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
            note: None,
            shutdown: Some("2026-05-12".into()),
            reported_by_third_parties: false,
            // dall-e-3 makes pictures from text only.
            edit_images_max: Some(0),
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
            note: None,
            shutdown: Some("2026-05-12".into()),
            reported_by_third_parties: false,
            edit_images_max: Some(1),
        };
        for spec in [
            gpt2,
            gpt2_dated,
            flare,
            flare_dated,
            sunburst,
            sunburst_dated,
            gpt15,
            gpt15_dated,
            chatgpt_latest,
            gpt1,
            mini,
            dalle3,
            dalle2,
        ] {
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
            // A shutdown date belongs to the name, not to what a model resembles: a model
            // declared like gpt-image-1.5 is not shut down with it.
            spec.shutdown = catalog.models.get(name).and_then(|m| m.shutdown.clone());
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
                pricing,
                reported_by_third_parties
            );
            if o.edit_images_max.is_some() {
                spec.edit_images_max = o.edit_images_max;
            }
            if o.flexible_size.is_some() {
                spec.flexible_size = o.flexible_size.clone();
            }
            if o.note.is_some() {
                spec.note = o.note.clone();
            }
            if let Some(date) = &o.shutdown {
                let date = date.trim();
                if date.is_empty() {
                    spec.shutdown = None;
                } else if NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok() {
                    spec.shutdown = Some(date.to_string());
                } else {
                    return Err(format!(
                        "[models.\"{name}\"] shutdown = \"{date}\" is not a date: write it as YYYY-MM-DD (or \"\" for none)"
                    ));
                }
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

/// Image tokens an input picture of `w`×`h` is billed as, estimated the way OpenAI counts
/// vision input: fitted into 2048×2048, the short side scaled to 768, then 170 tokens per
/// 512×512 tile plus 85 (a 1024² picture: 765 tokens).
pub fn input_image_tokens(w: u32, h: u32) -> u64 {
    let (mut w, mut h) = (f64::from(w.max(1)), f64::from(h.max(1)));
    let fit = (2048.0 / w.max(h)).min(1.0);
    w *= fit;
    h *= fit;
    let short = (768.0 / w.min(h)).min(1.0);
    w *= short;
    h *= short;
    let tiles = (w / 512.0).ceil() * (h / 512.0).ceil();
    85 + 170 * tiles as u64
}

/// The estimated cost in US dollars of an edit's input pictures (their sizes in pixels), billed
/// as image input tokens; 0 for a model priced per image (dall-e-2 bills no input).
pub fn estimate_input_cost(spec: &ModelSpec, inputs: &[(u32, u32)]) -> f64 {
    let Some(price) = spec.pricing.image_input_per_m else {
        return 0.0;
    };
    let tokens: u64 = inputs.iter().map(|(w, h)| input_image_tokens(*w, *h)).sum();
    price * tokens as f64 / 1e6
}

#[cfg(test)]
mod tests {

    #[test]
    fn input_images_are_priced_as_image_tokens() {
        assert_eq!(input_image_tokens(1024, 1024), 765);
        assert_eq!(input_image_tokens(512, 512), 255);
        assert_eq!(input_image_tokens(4096, 2048), 1105);
        let c = Catalog::builtin();
        let g2 = c.get("gpt-image-2").unwrap();
        let one = estimate_input_cost(g2, &[(1024, 1024)]);
        assert!((one - 8.0 * 765.0 / 1e6).abs() < 1e-12, "{one}");
        assert_eq!(
            estimate_input_cost(c.get("dall-e-2").unwrap(), &[(1024, 1024)]),
            0.0
        );
        assert_eq!(c.get("dall-e-3").unwrap().edit_images(), 0);
        assert_eq!(c.get("dall-e-2").unwrap().edit_images(), 1);
        assert_eq!(g2.edit_images(), 16);
        assert!(
            !c.get("gpt-image-1-mini")
                .unwrap()
                .accepts(Field::InputFidelity)
        );
        assert!(
            c.get("gpt-image-1.5")
                .unwrap()
                .accepts(Field::InputFidelity)
        );
    }
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

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    /// Issue 10 item 5: shutdown dates are data, and lists mark the models with them.
    #[test]
    fn shut_down_models_are_marked_with_their_date() {
        let c = Catalog::builtin();
        let today = day("2026-12-02");
        let cases = [
            ("dall-e-2", "2026-05-12"),
            ("dall-e-3", "2026-05-12"),
            ("gpt-image-1", "2026-10-23"),
            ("gpt-image-1.5", "2026-12-01"),
            ("gpt-image-1.5-2025-12-16", "2026-12-01"),
            ("gpt-image-1-mini", "2026-12-01"),
            ("chatgpt-image-latest", "2026-12-01"),
        ];
        for (name, date) in cases {
            let m = c.get(name).unwrap_or_else(|| panic!("{name}"));
            assert!(m.is_shut_down(today), "{name}");
            assert_eq!(
                m.lifecycle_label(today),
                Some(format!("shut down ({date})")),
                "{name}"
            );
            let w = m.openai_shutdown_warning(today).unwrap();
            assert!(w.contains(date) && w.contains(DEFAULT_MODEL), "{w}");
            // No note: compatible servers may serve these names without a warning.
            assert_eq!(m.note, None, "{name}");
        }
        // The day before, it is announced, not done.
        let m = c.get("gpt-image-1.5").unwrap();
        assert_eq!(
            m.lifecycle_label(day("2026-11-30")).as_deref(),
            Some("shuts down 2026-12-01")
        );
        for name in [
            "gpt-image-2",
            "gpt-image-2-2026-04-21",
            "gpt-image-2.5-flare",
            "gpt-image-2.5-sunburst-2026-09-08",
        ] {
            let m = c.get(name).unwrap();
            assert_eq!(m.lifecycle_label(today), None, "{name}");
            assert_eq!(m.openai_shutdown_warning(today), None, "{name}");
        }
        // The config can set or clear a date, and refuses a non-date.
        let mut o = BTreeMap::new();
        o.insert(
            "dall-e-3".to_string(),
            ModelOverride {
                shutdown: Some(String::new()),
                ..Default::default()
            },
        );
        o.insert(
            "my-local".to_string(),
            ModelOverride {
                like: Some("gpt-image-1.5".into()),
                ..Default::default()
            },
        );
        let c2 = Catalog::with_overrides(&o).unwrap();
        assert_eq!(c2.get("dall-e-3").unwrap().lifecycle_label(today), None);
        assert_eq!(c2.get("my-local").unwrap().lifecycle_label(today), None);
        o.remove("my-local");
        o.insert(
            "dall-e-3".to_string(),
            ModelOverride {
                shutdown: Some("next spring".into()),
                ..Default::default()
            },
        );
        assert!(
            Catalog::with_overrides(&o)
                .unwrap_err()
                .contains("YYYY-MM-DD")
        );
    }

    /// Issue 10 item 6: the 2.5 models take xhigh and max; gpt-image-2 does not.
    #[test]
    fn flare_and_sunburst_take_xhigh_and_max() {
        let c = Catalog::builtin();
        for name in [
            "gpt-image-2.5-flare",
            "gpt-image-2.5-flare-2026-09-08",
            "gpt-image-2.5-sunburst",
            "gpt-image-2.5-sunburst-2026-09-08",
        ] {
            let m = c.get(name).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(m.name, name);
            assert!(m.qualities.iter().any(|q| q == "xhigh"), "{name}");
            assert!(m.qualities.iter().any(|q| q == "max"), "{name}");
            assert_eq!(m.dialect, Dialect::Gpt);
            assert!(m.reported_by_third_parties, "{name}");
        }
        let g2 = c.get("gpt-image-2").unwrap();
        assert!(!g2.qualities.iter().any(|q| q == "xhigh" || q == "max"));
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
    }

    /// Issue 10 item 7: gpt-image-2 was priced with gpt-image-1's output tokens (4,160 at high,
    /// 1024²), about $0.125 for a picture that costs about $0.211.
    #[test]
    fn gpt_image_2_costs_use_its_own_output_tokens() {
        let c = Catalog::builtin();
        let g2 = c.get("gpt-image-2").unwrap();
        let at = |q: &str, size: &str| estimate_cost(g2, "", 1, size, q).unwrap();
        for (q, tokens) in [("low", 196.0), ("medium", 1756.0), ("high", 7024.0)] {
            let want = tokens * 30.0 / 1e6;
            assert!(
                (at(q, "1024x1024") - want).abs() < 1e-9,
                "{q}: {}",
                at(q, "1024x1024")
            );
        }
        assert!((at("high", "1024x1024") - 0.211).abs() < 0.001);
        // Other sizes scale with the pixel count.
        let wide = at("high", "1536x1024");
        assert!((wide - 7024.0 * 1.5 * 30.0 / 1e6).abs() < 1e-9, "{wide}");
        // The dated id is the same model.
        let dated = c.get("gpt-image-2-2026-04-21").unwrap();
        assert_eq!(
            estimate_cost(dated, "", 1, "1024x1024", "high"),
            Some(at("high", "1024x1024"))
        );
        for name in ["gpt-image-2.5-flare", "gpt-image-2.5-sunburst-2026-09-08"] {
            let spec = c
                .get(name)
                .unwrap_or_else(|| panic!("{name} in the catalogue"));
            for (q, tokens) in [
                ("low", 196.0),
                ("medium", 439.0),
                ("high", 1756.0),
                ("xhigh", 3122.0),
                ("max", 7024.0),
            ] {
                let got = estimate_cost(spec, "", 1, "1024x1024", q).unwrap();
                assert!(
                    (got - tokens * 30.0 / 1e6).abs() < 1e-9,
                    "{name} {q}: {got}"
                );
            }
        }
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
