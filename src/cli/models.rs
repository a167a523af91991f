//! `easel models`: the catalogue, as a table or JSON lines.

use crate::config::Settings;
use crate::sanitize;

pub fn run(settings: &Settings, json: bool) -> i32 {
    // Names, sizes and notes may come from the config's [models] tables: never print them raw.
    let say = |text: String| println!("{}", sanitize::line(&text));
    for m in settings.catalog.models() {
        if json {
            println!(
                "{}",
                sanitize::json(&serde_json::to_string(m).unwrap_or_default())
            );
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
        say(m.name.clone());
        say(format!("  sizes:     {sizes}"));
        if !m.qualities.is_empty() {
            say(format!("  qualities: {}", m.qualities.join(" ")));
        }
        say(format!(
            "  n:         1–{}    prompt: up to {} characters",
            m.n_max, m.prompt_max_chars
        ));
        say(format!("  fields:    {}", fields.join(" ")));
        if let Some(note) = &m.note {
            say(format!("  note:      {note}"));
        }
    }
    0
}
