//! What the studio remembers between runs: the prompt being written (sent or not), the
//! parameters, the focused pane, the history's filter, search and selected record. Kept in the
//! data folder (`studio-state.json`), not in the config; `easel --fresh` starts clean. Pure:
//! the runtime reads and writes the file.

use super::model::{Filter, Model, Pane};
use crate::api::GenerationParams;
use crate::store::Id;
use serde::{Deserialize, Serialize};

/// The file's name in the data folder.
pub const FILE: &str = "studio-state.json";

/// What is saved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Saved {
    #[serde(default)]
    pub prompt: String,
    #[serde(default)]
    pub params: Option<GenerationParams>,
    #[serde(default)]
    pub focus: Option<String>,
    #[serde(default)]
    pub filter: Option<String>,
    #[serde(default)]
    pub filter_model: Option<String>,
    #[serde(default)]
    pub search: String,
    #[serde(default)]
    pub selected: Option<Id>,
    /// The history was shown as the gallery.
    #[serde(default)]
    pub gallery: bool,
}

fn pane_name(p: Pane) -> &'static str {
    match p {
        Pane::Editor | Pane::Inputs => "editor",
        Pane::Params => "params",
        Pane::Queue => "queue",
        Pane::History => "history",
    }
}

/// What the studio would want back next time.
pub fn capture(m: &Model) -> Saved {
    let (filter, filter_model) = match &m.history.filter {
        Filter::All => (None, None),
        Filter::Starred => (Some("starred"), None),
        Filter::Failed => (Some("failed"), None),
        Filter::Cancelled => (Some("cancelled"), None),
        Filter::Interrupted => (Some("interrupted"), None),
        Filter::Model(name) => (Some("model"), Some(name.clone())),
    };
    let mut params = m.params.clone();
    params.prompt.clear();
    Saved {
        prompt: m.prompt(),
        params: Some(params),
        focus: Some(pane_name(m.focus).to_string()),
        filter: filter.map(str::to_string),
        filter_model,
        search: m.history.text.clone(),
        selected: m.history.selected_id,
        gallery: m.gallery,
    }
}

/// Put a saved state back into a new studio. Parameters the model or provider would refuse now
/// (the catalogue changed, another provider) are not restored; text is cleaned like a paste.
pub fn restore(m: &mut Model, saved: Saved) {
    if !saved.prompt.is_empty() {
        let text = crate::sanitize::text(&saved.prompt);
        m.editor.insert_str(text.as_ref());
    }
    if let Some(p) = saved.params {
        let mut probe = p.clone();
        probe.prompt = "x".into();
        if crate::api::request::check(&probe, &m.catalog, &m.provider.rules).is_ok() {
            m.params = p;
            m.params.prompt.clear();
        }
    }
    m.gallery = saved.gallery;
    m.focus = match saved.focus.as_deref() {
        Some("params") => Pane::Params,
        Some("queue") => Pane::Queue,
        Some("history") => Pane::History,
        _ => Pane::Editor,
    };
    m.history.filter = match (saved.filter.as_deref(), saved.filter_model) {
        (Some("starred"), _) => Filter::Starred,
        (Some("failed"), _) => Filter::Failed,
        (Some("cancelled"), _) => Filter::Cancelled,
        (Some("interrupted"), _) => Filter::Interrupted,
        (Some("model"), Some(name)) => Filter::Model(name),
        _ => Filter::All,
    };
    m.history.text = crate::sanitize::line(&saved.search).into_owned();
    // The first page asks where the record stands, so the selection lands on it.
    if let Some(id) = saved.selected {
        m.history.selected_id = Some(id);
        m.history.anchor = Some((id, false));
    }
}
