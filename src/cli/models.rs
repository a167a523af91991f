//! `easel models`: the catalogue, as a table or JSON lines.

use crate::config::Settings;

pub fn run(settings: &Settings, json: bool) -> i32 {
    for m in settings.catalog.models() {
        if json {
            println!("{}", serde_json::to_string(m).unwrap_or_default());
            continue;
        }
        let sizes = match &m.flexible_size {
            Some(f) => format!("{} or any WxH (×{}, up to {}px, 1:{}–{}:1)", m.sizes.join(" "), f.multiple_of, f.max_edge, f.max_aspect, f.max_aspect),
            None => m.sizes.join(" "),
        };
        let fields: Vec<&str> = m.fields.iter().map(|f| f.wire_name()).collect();
        println!("{}", m.name);
        println!("  sizes:     {sizes}");
        if !m.qualities.is_empty() {
            println!("  qualities: {}", m.qualities.join(" "));
        }
        println!("  n:         1–{}    prompt: up to {} characters", m.n_max, m.prompt_max_chars);
        println!("  fields:    {}", fields.join(" "));
        if let Some(note) = &m.note {
            println!("  note:      {note}");
        }
    }
    0
}
