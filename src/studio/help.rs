//! What the help popup lists: the focused pane's keys first, then the rest, then the keys of
//! the search line and of text editing. Pure, so `update` (how far the popup scrolls) and the
//! view (what it draws) read the same list.

use super::keymap::{Context, Keymap, context_name};
use super::model::Pane;

/// One section of the help: a title and its (keys, what they do) rows.
pub struct Section {
    pub title: String,
    pub rows: Vec<(String, String)>,
}

/// Keys the text editor (ratatui-textarea) handles itself.
const EDITING: &[(&str, &str)] = &[
    ("Ctrl-U", "undo (not clear-line)"),
    ("Ctrl-R", "redo"),
    (
        "Ctrl-K / Ctrl-J",
        "delete to the end / the start of the line",
    ),
    ("Ctrl-W, Alt-Backspace", "delete the word before the cursor"),
    ("Alt-D", "delete the word after the cursor"),
    ("Ctrl-Y", "paste what was last deleted"),
    ("Ctrl-A / Ctrl-E", "start / end of the line"),
    ("Alt-F / Alt-B", "next / previous word"),
    ("Enter", "new line"),
];

/// The prompt syntax of a run (docs/runs.md).
const RUN_SYNTAX: &[(&str, &str)] = &[
    ("{red|blue}", "a choice: one job for each (choices nest)"),
    (
        "__name__",
        "each line of $XDG_CONFIG_HOME/easel/wildcards/name.txt",
    ),
    (r"\{ \} \| \_ \\", "the character itself"),
    (
        "",
        "every combination is one job of the run; the prompt's edge says how many and the estimate",
    ),
];

/// What the search line takes besides its keys.
const SEARCH_SYNTAX: &[(&str, &str)] = &[
    (
        "word word",
        "every word must match (fuzzily, within a word)",
    ),
    (
        "'word ^start end$ !not",
        "as written, at the start, at the end, without",
    ),
    ("tag:NAME  #NAME", "only records with that tag"),
    ("rating:N", "only records rated N or more (1–5)"),
    ("sort:rating", "best rated first (sort:date: newest first)"),
];

fn bound(keymap: &Keymap, context: Context) -> Section {
    Section {
        title: context_name(context).to_string(),
        rows: keymap
            .keys_for(context)
            .into_iter()
            .map(|(action, keys)| {
                let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
                (keys.join(" "), action.describe().to_string())
            })
            .collect(),
    }
}

fn fixed(title: &str, rows: &[(&str, &str)]) -> Section {
    Section {
        title: title.to_string(),
        rows: rows
            .iter()
            .map(|(k, d)| (k.to_string(), d.to_string()))
            .collect(),
    }
}

/// The help's sections, the focused pane's first.
pub fn sections(keymap: &Keymap, focus: Pane) -> Vec<Section> {
    let mut contexts = vec![focus.context()];
    for c in [
        Context::Global,
        Context::Editor,
        Context::Inputs,
        Context::Params,
        Context::Queue,
        Context::History,
    ] {
        if !contexts.contains(&c) {
            contexts.push(c);
        }
    }
    let mut out: Vec<Section> = contexts.into_iter().map(|c| bound(keymap, c)).collect();
    let mut editing = fixed("editor text", EDITING);
    editing.rows.extend(fixed("", RUN_SYNTAX).rows);
    let mut search = bound(keymap, Context::SearchLine);
    search.title = "history search line".into();
    search.rows.extend(fixed("", SEARCH_SYNTAX).rows);
    // The fixed keys of the focused pane come right after its own.
    match focus {
        Pane::Editor => {
            out.insert(1, editing);
            out.push(search);
        }
        Pane::History => {
            out.insert(1, search);
            out.push(editing);
        }
        _ => {
            out.push(editing);
            out.push(search);
        }
    }
    for (context, title) in [
        (Context::Popup, "popups (help, details)"),
        (Context::Confirm, "confirmations"),
        (Context::Compare, "compare (c in the history)"),
        (
            Context::Mask,
            "mask editor (m in the inputs, M in the history)",
        ),
        (Context::Lineage, "lineage view (L in the history)"),
    ] {
        let mut s = bound(keymap, context);
        s.title = title.into();
        out.push(s);
    }
    out
}

/// The closing line of the help.
pub const FOOTNOTE: &str =
    "Keys can be changed in the [keys] table of the config file (`easel config path` shows where).";

/// How many lines the help has (titles, rows, the footnote).
pub fn line_count(keymap: &Keymap, focus: Pane) -> usize {
    sections(keymap, focus)
        .iter()
        .map(|s| 1 + s.rows.len())
        .sum::<usize>()
        + 1
}
