//! Keys to actions: a table of defaults, overridable from the config's `[keys]` table. Pure, so
//! it is tested as a table of cases without a terminal.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Where a key press lands. Global bindings apply everywhere except inside text inputs (the
/// editor, the search line), where only the ones marked as such do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Context {
    Global,
    Editor,
    Params,
    Queue,
    History,
    /// The history search line (after `/`): typed characters are text.
    #[serde(rename = "search")]
    SearchLine,
    /// The help and details popups.
    Popup,
    /// A confirmation (delete, quit while jobs run): any key not bound here says no.
    Confirm,
    /// The compare screen (2–4 images side by side, or blink).
    Compare,
    /// The reference strip: the edit's input pictures.
    Inputs,
    /// The mask editor (a selection painted over the first input picture).
    Mask,
    /// The lineage view (a record's family as a tree).
    Lineage,
}

/// Everything a key can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    // Global
    NextPane,
    PrevPane,
    Help,
    Quit,
    ForceQuit,
    Suspend,
    /// Redraw the whole screen and ask the terminal again what it can show (after a tmux
    /// attach from another terminal, or a screen messed up by another program).
    Redraw,
    Zoom,
    FocusEditor,
    // Editor
    Submit,
    SubmitFront,
    LeaveEditor,
    ExternalEditor,
    ClearPrompt,
    /// Send the prompt (a run or one request) through the Batch API: half price, within 24 h.
    SendBatch,
    // Lists
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    // Params
    NextValue,
    PrevValue,
    TypeValue,
    // Queue
    Cancel,
    Retry,
    MoveUp,
    MoveDown,
    MoveFront,
    PauseAll,
    /// Hold or release the queued jobs of the selected job's run.
    PauseRun,
    /// Cancel every queued or running job of the selected job's run.
    CancelRun,
    /// Retry the failed (and interrupted) jobs of the selected job's run.
    RetryRun,
    // History
    Search,
    ClearSearch,
    // The search line
    KeepSearch,
    ClearLine,
    // Confirmations
    Yes,
    Details,
    Reuse,
    Rerun,
    Star,
    EditTags,
    Rate0,
    Rate1,
    Rate2,
    Rate3,
    Rate4,
    Rate5,
    Delete,
    Undo,
    CopyPrompt,
    CopyPath,
    FullView,
    OpenViewer,
    Filter,
    NextImage,
    Mark,
    #[serde(rename = "compare")]
    CompareMarked,
    /// The history as a grid of thumbnails (again: the list).
    Gallery,
    /// The selected record's run as a labelled grid (again, or Esc: back).
    RunGrid,
    Left,
    Right,
    // Compare
    Blink,
    NextCompared,
    PrevCompared,
    Reject,
    CloseCompare,
    // Edits (issue 12)
    /// Make the selected history image the picture the next prompt edits.
    EditThis,
    /// Add the selected history image as a reference picture.
    AddReference,
    /// Type a path (or a history id) of a reference picture to add.
    AddFile,
    /// Jump to the record's parent (lineage).
    JumpParent,
    /// Jump to the record's next child (again: the one after).
    JumpChild,
    MoveLeft,
    MoveRight,
    RemoveInput,
    /// Open the mask editor on the first input picture.
    PaintMask,
    /// Type the path of a mask file to use.
    LoadMask,
    RemoveMask,
    /// Input fidelity: default, high, low.
    Fidelity,
    // The mask editor
    FarLeft,
    FarRight,
    FarUp,
    FarDown,
    Narrower,
    Wider,
    Shorter,
    Taller,
    MaskShape,
    MaskAdd,
    MaskSubtract,
    MaskInvert,
    MaskClear,
    MaskSave,
    MaskLeave,
    // Lineage
    /// The record's family as a tree, on the whole screen.
    ShowLineage,
    /// Go to the selected record of the tree in the history.
    GoToRecord,
    CloseLineage,
}

impl Action {
    /// What the help screen says.
    pub fn describe(self) -> &'static str {
        match self {
            Action::NextPane => "next pane",
            Action::PrevPane => "previous pane",
            Action::Help => "show or hide this help",
            Action::Quit => "quit (asks first while jobs run)",
            Action::ForceQuit => "quit now",
            Action::Suspend => "suspend to the shell (fg returns)",
            Action::Redraw => "redraw, and detect the terminal's graphics again",
            Action::Zoom => "zoom: the preview takes the screen (again: back)",
            Action::FocusEditor => "edit the prompt",
            Action::Submit => "queue the prompt",
            Action::SubmitFront => "queue the prompt at the front",
            Action::LeaveEditor => "leave the editor",
            Action::ExternalEditor => "edit the prompt in $VISUAL / $EDITOR",
            Action::ClearPrompt => "clear the whole prompt (Ctrl-U undoes)",
            Action::Up => "up",
            Action::Down => "down",
            Action::PageUp => "page up",
            Action::PageDown => "page down",
            Action::Top => "first",
            Action::Bottom => "last",
            Action::NextValue => "next value",
            Action::PrevValue => "previous value",
            Action::TypeValue => "type a size (WIDTHxHEIGHT; digits start it too)",
            Action::Cancel => "cancel the job (or dismiss an ended one)",
            Action::Retry => "retry the job",
            Action::MoveUp => "move the job up",
            Action::MoveDown => "move the job down",
            Action::MoveFront => "move the job to the front",
            Action::PauseAll => "pause or resume the queue",
            Action::SendBatch => {
                "send the prompt (or its run) as one Batch API batch: half price, results within 24 h (asks first)"
            }
            Action::PauseRun => "pause or resume the job's run (its queued jobs wait)",
            Action::CancelRun => "cancel every queued and running job of the job's run",
            Action::RetryRun => "retry the failed or cancelled jobs of the job's run",
            Action::Search => "search prompts ('exact ^start end$ !not)",
            Action::ClearSearch => "clear the search",
            Action::KeepSearch => "keep the search, back to the list",
            Action::ClearLine => "clear the line",
            Action::Yes => "yes (any other key: no)",
            Action::Details => "details",
            Action::Reuse => "load prompt and parameters into the editor",
            Action::Rerun => "run again (or retry a failed one)",
            Action::Star => "star or unstar",
            Action::EditTags => "tags: +add -remove (Tab completes)",
            Action::Rate0 => "clear the rating",
            Action::Rate1 => "rate 1",
            Action::Rate2 => "rate 2",
            Action::Rate3 => "rate 3",
            Action::Rate4 => "rate 4",
            Action::Rate5 => "rate 5",
            Action::Delete => "delete to the trash (asks first)",
            Action::Undo => "undo the last delete",
            Action::CopyPrompt => "copy the prompt (OSC 52)",
            Action::CopyPath => "copy the image path (OSC 52)",
            Action::FullView => "view the image full screen",
            Action::OpenViewer => "open the image in the system's viewer ($EASEL_VIEWER)",
            Action::Filter => "filter: all, starred, failed, cancelled, interrupted, model",
            Action::NextImage => "next image of the generation",
            Action::Mark => "mark the image for comparing (2–4)",
            Action::Gallery => "gallery: the history as a grid of thumbnails (again: the list)",
            Action::RunGrid => "this record's run as a labelled grid",
            Action::Left => "left (gallery)",
            Action::Right => "right (gallery)",
            Action::CompareMarked => "compare the marked images (or the images of this generation)",
            Action::Blink => "blink: one place, switch between them (again: side by side)",
            Action::NextCompared => "next image (blink)",
            Action::PrevCompared => "previous image (blink)",
            Action::Reject => "reject the shown image: to the trash (u undoes)",
            Action::CloseCompare => "back to the list",
            Action::EditThis => "edit this image: it becomes the picture the prompt edits",
            Action::AddReference => "add this image as a reference picture of the edit",
            Action::AddFile => "add a reference picture: type its path (or a history id[:N])",
            Action::JumpParent => "go to the parent (lineage)",
            Action::JumpChild => "go to a record made from this one (again: the next)",
            Action::MoveLeft => "move the picture left (the first is the one edited)",
            Action::MoveRight => "move the picture right",
            Action::RemoveInput => "remove the picture from the edit",
            Action::PaintMask => "paint a mask over the first picture",
            Action::LoadMask => "use a mask file: type its path",
            Action::RemoveMask => "remove the mask",
            Action::Fidelity => "input fidelity: default → high → low (where the model takes it)",
            Action::FarLeft => "left 8 dots",
            Action::FarRight => "right 8 dots",
            Action::FarUp => "up 8 dots",
            Action::FarDown => "down 8 dots",
            Action::Narrower => "narrower",
            Action::Wider => "wider",
            Action::Shorter => "shorter",
            Action::Taller => "taller",
            Action::MaskShape => "rectangle ⇄ ellipse",
            Action::MaskAdd => "add the shape to the area to edit",
            Action::MaskSubtract => "take the shape out of the area",
            Action::MaskInvert => "invert the area",
            Action::MaskClear => "clear the area",
            Action::MaskSave => "save the mask and use it",
            Action::MaskLeave => "leave without saving",
            Action::ShowLineage => "lineage: the family tree of this record",
            Action::GoToRecord => "go to this record in the history",
            Action::CloseLineage => "back",
        }
    }
}

/// A key with its modifiers, as written in the config ("ctrl-s", "alt-enter", "J", "f1").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub code: KeyCode,
    pub mods: KeyModifiers,
}

impl Key {
    pub const fn new(code: KeyCode, mods: KeyModifiers) -> Key {
        Key { code, mods }
    }

    /// Normalise a terminal key event: shift is implied by an upper-case character, and
    /// BackTab is shift-tab.
    pub fn from_event(e: &KeyEvent) -> Key {
        let mut mods =
            e.modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT | KeyModifiers::SHIFT);
        let code = match e.code {
            KeyCode::Char(c) => {
                mods.remove(KeyModifiers::SHIFT);
                KeyCode::Char(if mods.contains(KeyModifiers::CONTROL) {
                    c.to_ascii_lowercase()
                } else {
                    c
                })
            }
            KeyCode::BackTab => {
                mods.insert(KeyModifiers::SHIFT);
                KeyCode::Tab
            }
            other => other,
        };
        Key { code, mods }
    }

    pub fn parse(text: &str) -> Result<Key, String> {
        let t = text.trim();
        if t.is_empty() {
            return Err("an empty key".into());
        }
        let mut mods = KeyModifiers::NONE;
        let mut rest = t;
        // A lone "-" is the minus key, not a separator.
        while let Some((head, tail)) = rest.split_once('-').filter(|(_, tail)| !tail.is_empty()) {
            match head.to_ascii_lowercase().as_str() {
                "ctrl" | "c" => mods |= KeyModifiers::CONTROL,
                "alt" | "a" | "meta" | "m" => mods |= KeyModifiers::ALT,
                "shift" | "s" => mods |= KeyModifiers::SHIFT,
                _ => {
                    return Err(format!(
                        "unknown modifier \"{head}\" in \"{t}\" (use ctrl, alt or shift)"
                    ));
                }
            }
            rest = tail;
        }
        let lower = rest.to_ascii_lowercase();
        let code = match lower.as_str() {
            "enter" | "return" => KeyCode::Enter,
            "esc" | "escape" => KeyCode::Esc,
            "tab" => KeyCode::Tab,
            "backtab" => {
                mods |= KeyModifiers::SHIFT;
                KeyCode::Tab
            }
            "space" => KeyCode::Char(' '),
            "backspace" => KeyCode::Backspace,
            "delete" | "del" => KeyCode::Delete,
            "up" => KeyCode::Up,
            "down" => KeyCode::Down,
            "left" => KeyCode::Left,
            "right" => KeyCode::Right,
            "home" => KeyCode::Home,
            "end" => KeyCode::End,
            "pageup" | "pgup" => KeyCode::PageUp,
            "pagedown" | "pgdn" => KeyCode::PageDown,
            f if f.len() >= 2
                && f.starts_with('f')
                && f[1..].chars().all(|c| c.is_ascii_digit()) =>
            {
                KeyCode::F(
                    f[1..]
                        .parse()
                        .map_err(|_| format!("bad function key \"{t}\""))?,
                )
            }
            _ => {
                let mut chars = rest.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => {
                        let c = if mods.contains(KeyModifiers::CONTROL) {
                            c.to_ascii_lowercase()
                        } else {
                            c
                        };
                        if mods.contains(KeyModifiers::SHIFT)
                            && c.is_ascii_alphabetic()
                            && !mods.contains(KeyModifiers::CONTROL)
                        {
                            mods.remove(KeyModifiers::SHIFT);
                            KeyCode::Char(c.to_ascii_uppercase())
                        } else {
                            KeyCode::Char(c)
                        }
                    }
                    _ => return Err(format!("unknown key \"{t}\"")),
                }
            }
        };
        Ok(Key { code, mods })
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mods.contains(KeyModifiers::CONTROL) {
            f.write_str("Ctrl-")?;
        }
        if self.mods.contains(KeyModifiers::ALT) {
            f.write_str("Alt-")?;
        }
        if self.mods.contains(KeyModifiers::SHIFT) {
            f.write_str("Shift-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("Space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::Enter => f.write_str("Enter"),
            KeyCode::Esc => f.write_str("Esc"),
            KeyCode::Tab => f.write_str("Tab"),
            KeyCode::Backspace => f.write_str("Backspace"),
            KeyCode::Delete => f.write_str("Delete"),
            KeyCode::Up => f.write_str("↑"),
            KeyCode::Down => f.write_str("↓"),
            KeyCode::Left => f.write_str("←"),
            KeyCode::Right => f.write_str("→"),
            KeyCode::Home => f.write_str("Home"),
            KeyCode::End => f.write_str("End"),
            KeyCode::PageUp => f.write_str("PgUp"),
            KeyCode::PageDown => f.write_str("PgDn"),
            KeyCode::F(n) => write!(f, "F{n}"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// The active bindings.
#[derive(Debug, Clone, PartialEq)]
pub struct Keymap {
    /// In order of definition: the first binding of an action is the one hints show.
    bindings: Vec<(Context, Key, Action)>,
}

/// The `[keys]` table of the config: `context.action = "key"` or a list of keys.
pub type KeyConfig = BTreeMap<Context, BTreeMap<Action, KeySpec>>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum KeySpec {
    One(String),
    Many(Vec<String>),
}

const C: KeyModifiers = KeyModifiers::CONTROL;
const A: KeyModifiers = KeyModifiers::ALT;
const S: KeyModifiers = KeyModifiers::SHIFT;
const N: KeyModifiers = KeyModifiers::NONE;

fn ch(c: char) -> Key {
    Key::new(KeyCode::Char(c), N)
}

fn k(code: KeyCode) -> Key {
    Key::new(code, N)
}

impl Default for Keymap {
    fn default() -> Self {
        use Action::*;
        use Context::*;
        let list: Vec<(Context, Key, Action)> = vec![
            (Global, k(KeyCode::Tab), NextPane),
            (Global, Key::new(KeyCode::Tab, S), PrevPane),
            (Global, ch('?'), Help),
            (Global, k(KeyCode::F(1)), Help),
            (Global, ch('q'), Quit),
            (Global, Key::new(KeyCode::Char('c'), C), ForceQuit),
            (Global, Key::new(KeyCode::Char('z'), C), Suspend),
            // Ctrl-L as in a shell (in the editor it clears the prompt: F5 works there too).
            (Global, Key::new(KeyCode::Char('l'), C), Redraw),
            (Global, k(KeyCode::F(5)), Redraw),
            (Global, ch('i'), FocusEditor),
            (Global, ch('Z'), Zoom),
            (Global, ch('V'), RunGrid),
            (Global, k(KeyCode::F(2)), Zoom),
            (Editor, Key::new(KeyCode::Char('s'), C), Submit),
            (Editor, Key::new(KeyCode::Enter, A), Submit),
            (Editor, Key::new(KeyCode::Enter, C), Submit),
            (Editor, Key::new(KeyCode::Char('s'), A), SubmitFront),
            (Editor, k(KeyCode::Esc), LeaveEditor),
            (Editor, Key::new(KeyCode::Char('o'), C), ExternalEditor),
            (Editor, Key::new(KeyCode::Char('l'), C), ClearPrompt),
            (Editor, Key::new(KeyCode::Char('b'), C), SendBatch),
            (Editor, k(KeyCode::F(1)), Help),
            (Params, ch('k'), Up),
            (Params, k(KeyCode::Up), Up),
            (Params, ch('j'), Down),
            (Params, k(KeyCode::Down), Down),
            (Params, ch('l'), NextValue),
            (Params, k(KeyCode::Right), NextValue),
            (Params, k(KeyCode::Enter), NextValue),
            (Params, ch('h'), PrevValue),
            (Params, k(KeyCode::Left), PrevValue),
            (Params, ch('e'), TypeValue),
            (Queue, ch('k'), Up),
            (Queue, k(KeyCode::Up), Up),
            (Queue, ch('j'), Down),
            (Queue, k(KeyCode::Down), Down),
            (Queue, ch('x'), Cancel),
            (Queue, ch('r'), Retry),
            (Queue, ch('K'), MoveUp),
            (Queue, ch('J'), MoveDown),
            (Queue, ch('F'), MoveFront),
            (Queue, ch('p'), PauseAll),
            (Queue, ch('P'), PauseRun),
            (Queue, ch('X'), CancelRun),
            (Queue, ch('R'), RetryRun),
            (Queue, ch('e'), Reuse),
            (History, ch('k'), Up),
            (History, k(KeyCode::Up), Up),
            (History, ch('j'), Down),
            (History, k(KeyCode::Down), Down),
            (History, k(KeyCode::PageUp), PageUp),
            (History, k(KeyCode::PageDown), PageDown),
            (History, ch('g'), Top),
            (History, k(KeyCode::Home), Top),
            (History, ch('G'), Bottom),
            (History, k(KeyCode::End), Bottom),
            (History, ch('/'), Search),
            (History, k(KeyCode::Esc), ClearSearch),
            (History, k(KeyCode::Enter), Details),
            (History, ch('e'), Reuse),
            (History, ch('r'), Rerun),
            (History, ch('s'), Star),
            (History, ch('t'), EditTags),
            (History, ch('0'), Rate0),
            (History, ch('1'), Rate1),
            (History, ch('2'), Rate2),
            (History, ch('3'), Rate3),
            (History, ch('4'), Rate4),
            (History, ch('5'), Rate5),
            (History, ch('d'), Delete),
            (History, ch('u'), Undo),
            (History, ch('y'), CopyPrompt),
            (History, ch('Y'), CopyPath),
            (History, ch('z'), FullView),
            (History, ch('o'), OpenViewer),
            (History, ch('f'), Filter),
            (History, ch('n'), NextImage),
            (History, ch('p'), PauseAll),
            (History, ch('x'), Cancel),
            (History, ch('m'), Mark),
            (History, ch('v'), Gallery),
            (History, ch('h'), Left),
            (History, k(KeyCode::Left), Left),
            (History, ch('l'), Right),
            (History, k(KeyCode::Right), Right),
            (History, ch('c'), CompareMarked),
            (History, ch('E'), EditThis),
            (History, ch('R'), AddReference),
            (History, ch('M'), PaintMask),
            (History, ch('P'), JumpParent),
            (History, ch('C'), JumpChild),
            (Editor, Key::new(KeyCode::Char('a'), A), AddFile),
            (Inputs, ch('h'), Left),
            (Inputs, k(KeyCode::Left), Left),
            (Inputs, ch('l'), Right),
            (Inputs, k(KeyCode::Right), Right),
            (Inputs, ch('H'), MoveLeft),
            (Inputs, ch('L'), MoveRight),
            (Inputs, ch('x'), RemoveInput),
            (Inputs, k(KeyCode::Delete), RemoveInput),
            (Inputs, ch('a'), AddFile),
            (Inputs, ch('m'), PaintMask),
            (Inputs, ch('o'), LoadMask),
            (Inputs, ch('X'), RemoveMask),
            (Inputs, ch('f'), Fidelity),
            (Inputs, k(KeyCode::Esc), FocusEditor),
            (Mask, ch('h'), Left),
            (Mask, k(KeyCode::Left), Left),
            (Mask, ch('l'), Right),
            (Mask, k(KeyCode::Right), Right),
            (Mask, ch('k'), Up),
            (Mask, k(KeyCode::Up), Up),
            (Mask, ch('j'), Down),
            (Mask, k(KeyCode::Down), Down),
            (Mask, Key::new(KeyCode::Left, S), FarLeft),
            (Mask, Key::new(KeyCode::Right, S), FarRight),
            (Mask, Key::new(KeyCode::Up, S), FarUp),
            (Mask, Key::new(KeyCode::Down, S), FarDown),
            (Mask, ch('H'), Narrower),
            (Mask, ch('L'), Wider),
            (Mask, ch('K'), Shorter),
            (Mask, ch('J'), Taller),
            (Mask, ch('s'), MaskShape),
            (Mask, k(KeyCode::Tab), MaskShape),
            (Mask, ch(' '), MaskAdd),
            (Mask, ch('a'), MaskAdd),
            (Mask, ch('-'), MaskSubtract),
            (Mask, ch('d'), MaskSubtract),
            (Mask, ch('i'), MaskInvert),
            (Mask, ch('c'), MaskClear),
            (Mask, ch('u'), Undo),
            (Mask, k(KeyCode::Enter), MaskSave),
            (Mask, k(KeyCode::Esc), MaskLeave),
            (Mask, ch('q'), MaskLeave),
            (Mask, ch('?'), Help),
            (Compare, ch('b'), Blink),
            (Compare, ch(' '), NextCompared),
            (Compare, ch('l'), NextCompared),
            (Compare, k(KeyCode::Right), NextCompared),
            (Compare, k(KeyCode::Tab), NextCompared),
            (Compare, ch('h'), PrevCompared),
            (Compare, k(KeyCode::Left), PrevCompared),
            (Compare, Key::new(KeyCode::Tab, S), PrevCompared),
            (Compare, ch('0'), Rate0),
            (Compare, ch('1'), Rate1),
            (Compare, ch('2'), Rate2),
            (Compare, ch('3'), Rate3),
            (Compare, ch('4'), Rate4),
            (Compare, ch('5'), Rate5),
            (Compare, ch('x'), Reject),
            (Compare, ch('E'), EditThis),
            (Compare, k(KeyCode::Esc), CloseCompare),
            (Compare, ch('c'), CloseCompare),
            (SearchLine, k(KeyCode::Enter), KeepSearch),
            (SearchLine, k(KeyCode::Esc), ClearSearch),
            (SearchLine, Key::new(KeyCode::Char('u'), C), ClearLine),
            (SearchLine, k(KeyCode::Up), Up),
            (SearchLine, k(KeyCode::Down), Down),
            (Popup, ch('k'), Up),
            (Popup, k(KeyCode::Up), Up),
            (Popup, ch('j'), Down),
            (Popup, k(KeyCode::Down), Down),
            (Popup, k(KeyCode::PageUp), PageUp),
            (Popup, k(KeyCode::PageDown), PageDown),
            (Popup, ch(' '), PageDown),
            (Popup, ch('g'), Top),
            (Popup, k(KeyCode::Home), Top),
            (Popup, ch('P'), JumpParent),
            (Popup, ch('C'), JumpChild),
            (Popup, ch('L'), ShowLineage),
            (History, ch('L'), ShowLineage),
            (Context::Lineage, ch('k'), Up),
            (Context::Lineage, k(KeyCode::Up), Up),
            (Context::Lineage, ch('j'), Down),
            (Context::Lineage, k(KeyCode::Down), Down),
            (Context::Lineage, k(KeyCode::PageUp), PageUp),
            (Context::Lineage, k(KeyCode::PageDown), PageDown),
            (Context::Lineage, ch('g'), Top),
            (Context::Lineage, k(KeyCode::Home), Top),
            (Context::Lineage, ch('G'), Bottom),
            (Context::Lineage, k(KeyCode::End), Bottom),
            (Context::Lineage, k(KeyCode::Enter), GoToRecord),
            (Context::Lineage, k(KeyCode::Esc), CloseLineage),
            (Context::Lineage, ch('L'), CloseLineage),
            (Confirm, ch('y'), Yes),
            (Confirm, ch('Y'), Yes),
            (Confirm, k(KeyCode::Enter), Yes),
        ];
        Keymap { bindings: list }
    }
}

impl Keymap {
    /// The defaults with the config's `[keys]` applied: a configured action loses its default
    /// keys in that context and gets the ones given.
    pub fn with_config(config: &KeyConfig) -> Result<Keymap, String> {
        let mut map = Keymap::default();
        for (context, actions) in config {
            for (action, spec) in actions {
                map.bindings
                    .retain(|(c, _, a)| !(c == context && a == action));
                let keys = match spec {
                    KeySpec::One(s) => vec![s.clone()],
                    KeySpec::Many(v) => v.clone(),
                };
                for text in keys {
                    let name = serde_json::to_value(action)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default();
                    let key = Key::parse(&text)
                        .map_err(|e| format!("[keys.{}] {name}: {e}", context_name(*context)))?;
                    // A key bound anew replaces what it did before in that context.
                    map.bindings
                        .retain(|(c, k, _)| !(c == context && *k == key));
                    map.bindings.push((*context, key, *action));
                }
            }
        }
        Ok(map)
    }

    /// The action a key is bound to in exactly this context (no global fallback).
    pub fn get(&self, context: Context, key: Key) -> Option<Action> {
        self.bindings
            .iter()
            .find(|(c, k, _)| *c == context && *k == key)
            .map(|(_, _, a)| *a)
    }

    pub fn lookup(&self, context: Context, key: Key) -> Option<Action> {
        if let Some(a) = self.get(context, key) {
            return Some(a);
        }
        if matches!(context, Context::Editor | Context::SearchLine) {
            // In text inputs, plain characters are text: only modified keys and function keys
            // may reach global bindings.
            let plain = matches!(key.code, KeyCode::Char(_))
                && !key
                    .mods
                    .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT);
            if plain {
                return None;
            }
        }
        self.get(Context::Global, key)
    }

    /// The keys bound to each action in a context, for the help screen.
    pub fn keys_for(&self, context: Context) -> Vec<(Action, Vec<Key>)> {
        let mut by_action: Vec<(Action, Vec<Key>)> = Vec::new();
        for (c, key, a) in &self.bindings {
            if *c != context {
                continue;
            }
            match by_action.iter_mut().find(|(x, _)| x == a) {
                Some((_, keys)) => keys.push(*key),
                None => by_action.push((*a, vec![*key])),
            }
        }
        by_action
    }

    /// The first key of an action, for hints in pane titles.
    pub fn hint(&self, context: Context, action: Action) -> String {
        self.bindings
            .iter()
            .find(|(c, _, a)| (*c == context || *c == Context::Global) && *a == action)
            .map(|(_, k, _)| k.to_string())
            .unwrap_or_else(|| "—".into())
    }
}

pub fn context_name(c: Context) -> &'static str {
    match c {
        Context::Global => "global",
        Context::Editor => "editor",
        Context::Params => "params",
        Context::Queue => "queue",
        Context::History => "history",
        Context::SearchLine => "search",
        Context::Popup => "popup",
        Context::Confirm => "confirm",
        Context::Compare => "compare",
        Context::Inputs => "inputs",
        Context::Mask => "mask",
        Context::Lineage => "lineage",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::{KeyEventKind, KeyEventState};

    fn ev(code: KeyCode, mods: KeyModifiers) -> Key {
        Key::from_event(&KeyEvent {
            code,
            modifiers: mods,
            kind: KeyEventKind::Press,
            state: KeyEventState::NONE,
        })
    }

    #[test]
    fn default_lookups() {
        let m = Keymap::default();
        let cases: &[(Context, Key, Option<Action>)] = &[
            (
                Context::Editor,
                ev(KeyCode::Char('s'), C),
                Some(Action::Submit),
            ),
            (Context::Editor, ev(KeyCode::Enter, A), Some(Action::Submit)),
            (Context::Editor, ev(KeyCode::Enter, C), Some(Action::Submit)),
            (Context::Editor, ev(KeyCode::Char('q'), N), None),
            (Context::Editor, ev(KeyCode::Char('?'), S), None),
            (Context::Editor, ev(KeyCode::Tab, N), Some(Action::NextPane)),
            (
                Context::Editor,
                ev(KeyCode::BackTab, S),
                Some(Action::PrevPane),
            ),
            (
                Context::Editor,
                ev(KeyCode::Char('c'), C),
                Some(Action::ForceQuit),
            ),
            (
                Context::Editor,
                ev(KeyCode::Esc, N),
                Some(Action::LeaveEditor),
            ),
            (
                Context::History,
                ev(KeyCode::Char('q'), N),
                Some(Action::Quit),
            ),
            (
                Context::History,
                ev(KeyCode::Char('?'), S),
                Some(Action::Help),
            ),
            (Context::History, ev(KeyCode::F(1), N), Some(Action::Help)),
            (
                Context::History,
                ev(KeyCode::Char('/'), N),
                Some(Action::Search),
            ),
            (
                Context::History,
                ev(KeyCode::Char('G'), S),
                Some(Action::Bottom),
            ),
            (
                Context::History,
                ev(KeyCode::Tab, N),
                Some(Action::NextPane),
            ),
            (
                Context::Queue,
                ev(KeyCode::Char('J'), S),
                Some(Action::MoveDown),
            ),
            (
                Context::Queue,
                ev(KeyCode::Char('K'), S),
                Some(Action::MoveUp),
            ),
            (
                Context::Queue,
                ev(KeyCode::Char('x'), N),
                Some(Action::Cancel),
            ),
            (
                Context::Queue,
                ev(KeyCode::Char('p'), N),
                Some(Action::PauseAll),
            ),
            (
                Context::Queue,
                ev(KeyCode::Char('C'), C | S),
                Some(Action::ForceQuit),
            ),
            (
                Context::Params,
                ev(KeyCode::Right, N),
                Some(Action::NextValue),
            ),
            (Context::Params, ev(KeyCode::Char('w'), N), None),
        ];
        for (ctx, key, want) in cases {
            assert_eq!(m.lookup(*ctx, *key), *want, "{ctx:?} {key}");
        }
    }

    #[test]
    fn parsing_keys() {
        let cases: &[(&str, Key)] = &[
            ("ctrl-s", Key::new(KeyCode::Char('s'), C)),
            ("Ctrl-S", Key::new(KeyCode::Char('s'), C)),
            ("alt-enter", Key::new(KeyCode::Enter, A)),
            ("J", ch('J')),
            ("shift-j", ch('J')),
            ("f1", k(KeyCode::F(1))),
            ("-", ch('-')),
            ("ctrl--", Key::new(KeyCode::Char('-'), C)),
            ("space", ch(' ')),
            ("backtab", Key::new(KeyCode::Tab, S)),
            ("pgdn", k(KeyCode::PageDown)),
        ];
        for (text, want) in cases {
            assert_eq!(Key::parse(text).as_ref(), Ok(want), "{text}");
        }
        for bad in ["", "hyper-x", "ctrl-banana", "fx"] {
            assert!(Key::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn config_rebinds() {
        let mut cfg = KeyConfig::new();
        cfg.entry(Context::History)
            .or_default()
            .insert(Action::Star, KeySpec::Many(vec!["S".into(), "*".into()]));
        cfg.entry(Context::Editor)
            .or_default()
            .insert(Action::Submit, KeySpec::One("ctrl-g".into()));
        let m = Keymap::with_config(&cfg).unwrap();
        assert_eq!(m.lookup(Context::History, ch('s')), None);
        assert_eq!(m.lookup(Context::History, ch('S')), Some(Action::Star));
        assert_eq!(m.lookup(Context::History, ch('*')), Some(Action::Star));
        assert_eq!(
            m.lookup(Context::Editor, Key::new(KeyCode::Char('s'), C)),
            None
        );
        assert_eq!(
            m.lookup(Context::Editor, Key::new(KeyCode::Char('g'), C)),
            Some(Action::Submit)
        );
        assert!(
            m.keys_for(Context::History)
                .iter()
                .any(|(a, keys)| *a == Action::Star && keys.len() == 2)
        );
        let mut bad = KeyConfig::new();
        bad.entry(Context::Queue)
            .or_default()
            .insert(Action::Cancel, KeySpec::One("hyper-x".into()));
        assert!(
            Keymap::with_config(&bad)
                .unwrap_err()
                .contains("[keys.queue]")
        );
    }
}
