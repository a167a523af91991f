//! `easel models`: the catalogue, as a table or JSON lines.

use crate::catalog::{self, ModelSpec};
use crate::config::Settings;
use crate::sanitize;

/// Estimated prices of one 1024×1024 image at each quality, e.g. "low $0.006 · high $0.211".
fn price_line(m: &ModelSpec) -> Option<String> {
    let parts: Vec<String> = m
        .qualities
        .iter()
        .filter(|q| *q != "auto")
        .filter_map(|q| {
            catalog::estimate_cost(m, "", 1, "1024x1024", q).map(|c| format!("{q} ${c:.3}"))
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join(" · "))
}

pub fn run(settings: &Settings, json: bool) -> i32 {
    let today = catalog::today();
    // Names, sizes and notes may come from the config's [models] tables: never print them raw.
    let say = |text: String| println!("{}", sanitize::line(&text));
    // Models in service first, then those OpenAI has shut down.
    let (live, gone): (Vec<_>, Vec<_>) = settings
        .catalog
        .models()
        .partition(|m| !m.is_shut_down(today));
    for m in live.into_iter().chain(gone) {
        let lifecycle = m.lifecycle_label(today);
        if json {
            let mut v = serde_json::to_value(m).unwrap_or_default();
            if let Some(obj) = v.as_object_mut() {
                obj.insert("lifecycle".into(), serde_json::json!(lifecycle));
                obj.insert("shut_down".into(), serde_json::json!(m.is_shut_down(today)));
            }
            println!("{}", sanitize::json(&v.to_string()));
            continue;
        }
        let sizes = match &m.flexible_size {
            Some(f) => format!(
                "{} or any WxH (×{}, up to {}px, 1:{}–{}:1)",
                m.sizes.join(" "),
                f.multiple_of,
                f.max_edge,
                f.max_aspect,
                f.max_aspect
            ),
            None => m.sizes.join(" "),
        };
        let fields: Vec<&str> = m.fields.iter().map(|f| f.wire_name()).collect();
        match &lifecycle {
            // Shut down by OpenAI; compatible servers may still serve the name.
            Some(label) => say(format!("{}  {label} at OpenAI", m.name)),
            None => say(m.name.clone()),
        }
        say(format!("  sizes:     {sizes}"));
        if !m.qualities.is_empty() {
            say(format!("  qualities: {}", m.qualities.join(" ")));
        }
        say(format!(
            "  n:         1–{}    prompt: up to {} characters",
            m.n_max, m.prompt_max_chars
        ));
        say(format!("  fields:    {}", fields.join(" ")));
        if let Some(prices) = price_line(m) {
            say(format!("  estimate:  {prices} per 1024x1024 image"));
        }
        if m.reported_by_third_parties {
            say("  source:    reported by third parties (not in OpenAI's SDKs yet)".to_string());
        }
        if let Some(note) = &m.note {
            say(format!("  note:      {note}"));
        }
    }
    0
}
