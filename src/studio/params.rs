//! The parameters pane's logic: which fields the chosen model takes, the values each may have,
//! and stepping through them so that a combination the model rejects cannot be chosen.

use crate::api::{GenerationParams, ProviderRules, request};
use crate::catalog::{Catalog, Field};

/// A row of the parameters pane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Row {
    Model,
    Size,
    Quality,
    N,
    Format,
    Compression,
    Background,
    Moderation,
    Style,
    ResponseFormat,
    Stream,
    Partials,
}

impl Row {
    pub fn label(self) -> &'static str {
        match self {
            Row::Model => "model",
            Row::Size => "size",
            Row::Quality => "quality",
            Row::N => "n",
            Row::Format => "format",
            Row::Compression => "compression",
            Row::Background => "background",
            Row::Moderation => "moderation",
            Row::Style => "style",
            Row::ResponseFormat => "response",
            Row::Stream => "stream",
            Row::Partials => "partials",
        }
    }

    fn field(self) -> Option<Field> {
        Some(match self {
            Row::Model => return None,
            Row::Size => Field::Size,
            Row::Quality => Field::Quality,
            Row::N => Field::N,
            Row::Format => Field::OutputFormat,
            Row::Compression => Field::OutputCompression,
            Row::Background => Field::Background,
            Row::Moderation => Field::Moderation,
            Row::Style => Field::Style,
            Row::ResponseFormat => Field::ResponseFormat,
            Row::Stream => Field::Stream,
            Row::Partials => Field::PartialImages,
        })
    }
}

const ALL_ROWS: [Row; 12] = [
    Row::Model,
    Row::Size,
    Row::Quality,
    Row::N,
    Row::Format,
    Row::Compression,
    Row::Background,
    Row::Moderation,
    Row::Style,
    Row::ResponseFormat,
    Row::Stream,
    Row::Partials,
];

/// The rows shown for the current model (an unknown model shows the common ones).
pub fn rows(catalog: &Catalog, params: &GenerationParams) -> Vec<Row> {
    ALL_ROWS
        .into_iter()
        .filter(|r| match (r.field(), catalog.get(&params.model)) {
            (None, _) => true,
            (Some(f), Some(spec)) => spec.accepts(f),
            (Some(f), None) => matches!(f, Field::Size | Field::Quality | Field::N),
        })
        .collect()
}

/// The value a row shows.
pub fn value(params: &GenerationParams, row: Row) -> String {
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "default".into());
    match row {
        Row::Model => params.model.clone(),
        Row::Size => opt(&params.size),
        Row::Quality => opt(&params.quality),
        Row::N => params.n.to_string(),
        Row::Format => opt(&params.output_format),
        Row::Compression => params
            .output_compression
            .map_or_else(|| "default".into(), |c| c.to_string()),
        Row::Background => opt(&params.background),
        Row::Moderation => opt(&params.moderation),
        Row::Style => opt(&params.style),
        Row::ResponseFormat => opt(&params.response_format),
        Row::Stream => {
            if params.stream {
                "on".into()
            } else {
                "off".into()
            }
        }
        Row::Partials => params
            .partial_images
            .map_or_else(|| "default".into(), |p| p.to_string()),
    }
}

/// Every value a row may take for the current model, "unset" first.
fn candidates(catalog: &Catalog, params: &GenerationParams, row: Row) -> Vec<GenerationParams> {
    let spec = catalog.get(&params.model);
    let with = |f: &dyn Fn(&mut GenerationParams)| {
        let mut p = params.clone();
        f(&mut p);
        p
    };
    let strings = |list: Vec<String>,
                   set: fn(&mut GenerationParams, Option<String>)|
     -> Vec<GenerationParams> {
        std::iter::once(None)
            .chain(list.into_iter().map(Some))
            .map(|v| with(&|p| set(p, v.clone())))
            .collect()
    };
    match row {
        Row::Model => {
            let mut names: Vec<String> = catalog.names().iter().map(|s| s.to_string()).collect();
            if !names.contains(&params.model) {
                names.push(params.model.clone());
            }
            names
                .into_iter()
                .map(|m| with(&|p| p.model = m.clone()))
                .collect()
        }
        Row::Size => {
            let mut sizes = spec
                .map(|s| s.sizes.clone())
                .unwrap_or_else(|| vec!["auto".into(), "1024x1024".into()]);
            if spec.is_some_and(|s| s.flexible_size.is_some()) {
                for extra in [
                    "2048x2048",
                    "2048x1152",
                    "1152x2048",
                    "3840x2160",
                    "2160x3840",
                ] {
                    if !sizes.iter().any(|s| s == extra) {
                        sizes.push(extra.into());
                    }
                }
            }
            strings(sizes, |p, v| p.size = v)
        }
        Row::Quality => strings(
            spec.map(|s| s.qualities.clone()).unwrap_or_default(),
            |p, v| p.quality = v,
        ),
        Row::N => (1..=spec.map_or(10, |s| s.n_max))
            .map(|n| with(&|p| p.n = n))
            .collect(),
        Row::Format => strings(
            spec.map(|s| s.output_formats.clone()).unwrap_or_default(),
            |p, v| p.output_format = v,
        ),
        Row::Compression => std::iter::once(None)
            .chain([100u8, 90, 75, 50, 25].into_iter().map(Some))
            .map(|c| with(&|p| p.output_compression = c))
            .collect(),
        Row::Background => strings(
            spec.map(|s| s.backgrounds.clone()).unwrap_or_default(),
            |p, v| p.background = v,
        ),
        Row::Moderation => strings(
            spec.map(|s| s.moderations.clone()).unwrap_or_default(),
            |p, v| p.moderation = v,
        ),
        Row::Style => strings(
            spec.map(|s| s.styles.clone()).unwrap_or_default(),
            |p, v| p.style = v,
        ),
        Row::ResponseFormat => strings(
            spec.map(|s| s.response_formats.clone()).unwrap_or_default(),
            |p, v| p.response_format = v,
        ),
        Row::Stream => [false, true]
            .into_iter()
            .map(|on| {
                with(&|p| {
                    p.stream = on;
                    if !on {
                        p.partial_images = None;
                    }
                })
            })
            .collect(),
        Row::Partials => std::iter::once(None)
            .chain((0..=3u8).map(Some))
            .map(|k| with(&|p| p.partial_images = k))
            .collect(),
    }
}

/// Whether the provider and model accept these parameters (checked with a stand-in prompt).
pub fn acceptable(catalog: &Catalog, rules: &ProviderRules, params: &GenerationParams) -> bool {
    let mut p = params.clone();
    if p.prompt.trim().is_empty() {
        p.prompt = "x".into();
    }
    request::check(&p, catalog, rules).is_ok()
}

/// After switching model: drop every setting the new model does not take.
pub fn fit_to_model(catalog: &Catalog, rules: &ProviderRules, params: &mut GenerationParams) {
    let Some(spec) = catalog.get(&params.model).cloned() else {
        return;
    };
    let keep = |list: &[String], v: &mut Option<String>| {
        if v.as_ref().is_some_and(|x| !list.contains(x)) {
            *v = None;
        }
    };
    if !spec.accepts(Field::Size) {
        params.size = None;
    } else if let Some(s) = params.size.clone() {
        let mut probe = params.clone();
        probe.size = Some(s);
        if !acceptable(
            catalog,
            rules,
            &GenerationParams {
                stream: false,
                partial_images: None,
                ..probe
            },
        ) {
            params.size = None;
        }
    }
    keep(&spec.qualities, &mut params.quality);
    keep(&spec.output_formats, &mut params.output_format);
    keep(&spec.backgrounds, &mut params.background);
    keep(&spec.moderations, &mut params.moderation);
    keep(&spec.styles, &mut params.style);
    keep(&spec.response_formats, &mut params.response_format);
    params.n = params.n.clamp(1, spec.n_max.max(1));
    if !spec.accepts(Field::OutputCompression) {
        params.output_compression = None;
    }
    if !spec.accepts(Field::Stream) {
        params.stream = false;
        params.partial_images = None;
    }
    // Whatever still conflicts (compression without jpeg/webp, say) is cleared.
    if !acceptable(catalog, rules, params) {
        params.output_compression = None;
        params.background = None;
        if params.n > 1 {
            params.stream = false;
            params.partial_images = None;
        }
    }
}

/// Step a row's value forward (or back), skipping values the model would reject.
pub fn step(
    catalog: &Catalog,
    rules: &ProviderRules,
    params: &mut GenerationParams,
    row: Row,
    forward: bool,
) -> bool {
    let options = candidates(catalog, params, row);
    if options.is_empty() {
        return false;
    }
    let current = options
        .iter()
        .position(|o| value(o, row) == value(params, row))
        .unwrap_or(0);
    let len = options.len();
    // Every other value, in order; landing back on the current one is not a step.
    for k in 1..len {
        let i = if forward {
            (current + k) % len
        } else {
            (current + len - k) % len
        };
        let mut candidate = options[i].clone();
        if row == Row::Model {
            fit_to_model(catalog, rules, &mut candidate);
        }
        if acceptable(catalog, rules, &candidate) {
            let prompt = std::mem::take(&mut params.prompt);
            *params = candidate;
            params.prompt = prompt;
            return true;
        }
    }
    false
}

/// Why a row has no other value to step to, and what would change that ("set format to jpeg
/// or webp to change compression").
pub fn why_fixed(
    catalog: &Catalog,
    rules: &ProviderRules,
    params: &GenerationParams,
    row: Row,
) -> String {
    let model = &params.model;
    // Try the settings a row depends on: the first that unlocks it is the fix to name.
    let unlocks = |change: &dyn Fn(&mut GenerationParams)| {
        let mut p = params.clone();
        change(&mut p);
        let mut probe = p.clone();
        step(catalog, rules, &mut probe, row, true)
    };
    match row {
        Row::Compression => {
            for format in ["jpeg", "webp"] {
                if unlocks(&|p| p.output_format = Some(format.into())) {
                    return "set format to jpeg or webp to change compression".into();
                }
            }
        }
        Row::Partials => {
            if !params.stream && unlocks(&|p| p.stream = true) {
                return "turn stream on to choose partial images".into();
            }
            if params.n > 1
                && unlocks(&|p| {
                    p.n = 1;
                    p.stream = true;
                })
            {
                return "set n to 1 to stream partial images".into();
            }
        }
        Row::Stream if params.n > 1 && unlocks(&|p| p.n = 1) => {
            return "set n to 1 to stream".into();
        }
        Row::Background if unlocks(&|p| p.output_format = Some("png".into())) => {
            return "set format to png or webp for a transparent background".into();
        }
        Row::N
            if params.stream
                && unlocks(&|p| {
                    p.stream = false;
                    p.partial_images = None;
                }) =>
        {
            return "turn stream off to ask for more than one image".into();
        }
        _ => {}
    }
    format!("{} has no other value {model} accepts here", row.label())
}

/// A size typed by hand, checked as it is typed: `Ok` with the size when the model takes it,
/// else why not.
pub fn check_typed_size(
    catalog: &Catalog,
    rules: &ProviderRules,
    params: &GenerationParams,
    typed: &str,
) -> Result<String, String> {
    let size = typed
        .trim()
        .to_ascii_lowercase()
        .replace(['×', '*', ' '], "x");
    let Some((w, h)) = size.split_once('x') else {
        return Err("type WIDTHxHEIGHT, e.g. 1536x1024".into());
    };
    if w.parse::<u32>().is_err() || h.parse::<u32>().is_err() {
        return Err("type WIDTHxHEIGHT, e.g. 1536x1024".into());
    }
    let mut p = params.clone();
    p.size = Some(size.clone());
    if p.prompt.trim().is_empty() {
        p.prompt = "x".into();
    }
    match request::check(&p, catalog, rules) {
        Ok(_) => Ok(size),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(model: &str) -> GenerationParams {
        GenerationParams {
            model: model.into(),
            ..Default::default()
        }
    }

    #[test]
    fn rows_follow_the_model() {
        let c = Catalog::builtin();
        assert!(rows(&c, &p("gpt-image-2")).contains(&Row::Background));
        assert!(!rows(&c, &p("gpt-image-2")).contains(&Row::Style));
        assert!(rows(&c, &p("dall-e-3")).contains(&Row::Style));
        assert!(!rows(&c, &p("dall-e-3")).contains(&Row::Stream));
        assert_eq!(
            rows(&c, &p("mystery")),
            vec![Row::Model, Row::Size, Row::Quality, Row::N]
        );
    }

    #[test]
    fn stepping_never_lands_on_a_rejected_combination() {
        let c = Catalog::builtin();
        let rules = ProviderRules::default();
        let mut params = p("gpt-image-2");
        params.output_format = Some("jpeg".into());
        // transparent is skipped while the format is jpeg
        for _ in 0..10 {
            step(&c, &rules, &mut params, Row::Background, true);
            assert_ne!(params.background.as_deref(), Some("transparent"));
        }
        // compression needs jpeg/webp; with png it cannot be set
        let mut png = p("gpt-image-2");
        png.output_format = Some("png".into());
        assert!(!step(&c, &rules, &mut png, Row::Compression, true));
        // switching to dall-e-3 drops what it does not take
        let mut q = p("gpt-image-2");
        q.quality = Some("high".into());
        q.stream = true;
        q.size = Some("2048x1152".into());
        while q.model != "dall-e-3" {
            assert!(step(&c, &rules, &mut q, Row::Model, true));
            assert!(acceptable(&c, &rules, &q), "{q:?}");
        }
        assert_eq!(q.quality, None);
        assert!(!q.stream);
        assert_eq!(q.size, None);
        // n stops at the model's limit and wraps
        let mut d = p("dall-e-3");
        assert!(!step(&c, &rules, &mut d, Row::N, true) || d.n == 1);
    }

    #[test]
    fn a_fixed_row_names_its_fix() {
        let c = Catalog::builtin();
        let rules = ProviderRules::default();
        let mut png = p("gpt-image-2");
        png.output_format = Some("png".into());
        assert_eq!(
            why_fixed(&c, &rules, &png, Row::Compression),
            "set format to jpeg or webp to change compression"
        );
        let plain = p("gpt-image-2");
        assert_eq!(
            why_fixed(&c, &rules, &plain, Row::Partials),
            "turn stream on to choose partial images"
        );
    }

    #[test]
    fn typed_sizes_are_checked_against_the_model() {
        let c = Catalog::builtin();
        let rules = ProviderRules::default();
        let gpt2 = p("gpt-image-2");
        assert_eq!(
            check_typed_size(&c, &rules, &gpt2, "1536X864").as_deref(),
            Ok("1536x864")
        );
        let odd = check_typed_size(&c, &rules, &gpt2, "1000x1000").unwrap_err();
        assert!(odd.contains("multiples of 16"), "{odd}");
        assert!(check_typed_size(&c, &rules, &gpt2, "wide").is_err());
        assert!(check_typed_size(&c, &rules, &gpt2, "4000x4000").is_err());
    }

    #[test]
    fn values_read_well() {
        let mut params = p("gpt-image-2");
        assert_eq!(value(&params, Row::Size), "default");
        params.stream = true;
        params.partial_images = Some(2);
        assert_eq!(value(&params, Row::Stream), "on");
        assert_eq!(value(&params, Row::Partials), "2");
    }
}
