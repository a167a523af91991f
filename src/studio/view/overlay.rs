//! Popups drawn over the panes: help (every key of the active keymap), details of a generation,
//! and confirmations.

use super::theme;
use crate::sanitize;
use crate::store::GenerationRecord;
use crate::studio::help;
use crate::studio::model::{Confirm, Model, Overlay};
use chrono::Local;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

pub fn draw(m: &Model, f: &mut Frame, area: Rect) {
    match &m.overlay {
        None => {}
        Some(Overlay::Help) => help(m, f, area),
        Some(Overlay::Details(r)) => {
            let key = |a| m.keymap.hint(crate::studio::keymap::Context::Popup, a);
            let keys = (
                key(crate::studio::keymap::Action::JumpParent),
                key(crate::studio::keymap::Action::JumpChild),
            );
            let family = m.family.as_ref().filter(|fam| fam.id == r.id);
            details(r, family, &keys, f, area, m.overlay_scroll)
        }
        Some(Overlay::Confirm(c)) => confirm(c, m, f, area),
    }
}

fn popup<'a>(
    f: &mut Frame,
    at: Rect,
    title: &'a str,
    lines: Vec<Line<'a>>,
    footer: &'a str,
    scroll: u16,
) {
    f.render_widget(Clear, at);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme::border(true))
        .title(Span::styled(title, theme::title(true)))
        .title_bottom(Line::from(Span::styled(footer, theme::dim())).right_aligned());
    f.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0)),
        at,
    );
}

fn help(m: &Model, f: &mut Frame, area: Rect) {
    let at = centered(area, 76, area.height.saturating_sub(2));
    // Rows fit the popup: keys in a column, descriptions cut with an ellipsis.
    let inner = usize::from(at.width.saturating_sub(2));
    let sections = help::sections(&m.keymap, m.focus);
    let widest = sections
        .iter()
        .flat_map(|s| s.rows.iter())
        .map(|(k, _)| unicode_width::UnicodeWidthStr::width(k.as_str()))
        .max()
        .unwrap_or(0);
    let key_col = widest.clamp(8, (inner / 2).max(8));
    let room = inner.saturating_sub(key_col + 3);
    let mut lines = Vec::new();
    for section in sections {
        lines.push(Line::from(Span::styled(section.title, theme::title(true))));
        for (keys, what) in section.rows {
            lines.push(Line::from(vec![
                Span::styled(format!("  {} ", super::pad(&keys, key_col)), theme::key()),
                Span::raw(super::fit(&what, room).into_owned()),
            ]));
        }
    }
    lines.push(Line::from(Span::styled(help::FOOTNOTE, theme::dim())));
    let footer = if lines.len() + 2 > usize::from(at.height) {
        " j/k scroll · any other key closes "
    } else {
        " any key closes "
    };
    popup(f, at, " Keys ", lines, footer, m.overlay_scroll);
}

fn details(
    r: &GenerationRecord,
    family: Option<&crate::studio::model::Family>,
    keys: &(String, String),
    f: &mut Frame,
    area: Rect,
    scroll: u16,
) {
    let (to_parent, to_child) = keys;
    let mut lines = Vec::new();
    let mut kv = |k: &str, v: String| {
        lines.push(Line::from(vec![
            Span::styled(format!("{k:<12}"), theme::dim()),
            Span::raw(sanitize::line(&v).into_owned()),
        ]));
    };
    kv("id", r.id.to_string());
    kv("status", r.status.to_string());
    kv("model", r.model.clone());
    kv(
        "provider",
        format!(
            "{}{}",
            r.provider,
            if r.demo {
                " (DEMO: offline demo backend)"
            } else {
                ""
            }
        ),
    );
    kv(
        "created",
        r.created
            .with_timezone(&Local)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string(),
    );
    if let (Some(s), Some(e)) = (r.started, r.finished) {
        kv(
            "took",
            format!(
                "{:.1} s, {} attempt(s)",
                (e - s).num_milliseconds() as f64 / 1000.0,
                r.attempts
            ),
        );
    }
    let p = &r.params;
    let params: Vec<String> = [
        ("size", p.size.clone()),
        ("quality", p.quality.clone()),
        ("n", Some(p.n.to_string())),
        ("format", p.output_format.clone()),
        ("background", p.background.clone()),
        ("moderation", p.moderation.clone()),
        ("style", p.style.clone()),
        ("stream", p.stream.then(|| "on".to_string())),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| format!("{k}={v}")))
    .collect();
    kv("parameters", params.join(" "));
    // An edit's pictures, and where the record comes from (lineage).
    for (i, input) in p.images.iter().enumerate() {
        let role = if i == 0 { "edited" } else { "reference" };
        kv(
            &format!("input {}", i + 1),
            format!("{role} · {}", input_text(input)),
        );
    }
    if let Some(mask) = &p.mask {
        kv("mask", input_text(mask));
    }
    // Lineage: the parents (with their prompts once read), then the records made from this.
    for (i, parent) in r.lineage().iter().enumerate() {
        let prompt = match family.and_then(|fam| fam.parents.get(i)) {
            Some((_, Some(p))) => format!(" · {}", sanitize::truncate(&sanitize::line(p), 50)),
            Some((_, None)) => " · (parent deleted)".to_string(),
            None => String::new(),
        };
        let hint = if i == 0 {
            format!(" ({to_parent} goes there)")
        } else {
            String::new()
        };
        kv(
            "parent",
            format!(
                "{} {}{prompt}{hint}",
                parent.role.as_str(),
                parent.id.short()
            ),
        );
    }
    match family.map(|fam| &fam.children) {
        Some(children) if !children.is_empty() => {
            for (i, (id, role, prompt)) in children.iter().take(12).enumerate() {
                let hint = if i == 0 {
                    format!(" ({to_child}: next)")
                } else {
                    String::new()
                };
                kv(
                    "child",
                    format!(
                        "{} {} · {}{hint}",
                        child_role(*role),
                        id.short(),
                        sanitize::truncate(&sanitize::line(prompt), 50)
                    ),
                );
            }
            if children.len() > 12 {
                kv("", format!("and {} more", children.len() - 12));
            }
        }
        Some(_) => {}
        None => kv("children", "reading…".to_string()),
    }
    if let Some(u) = &r.usage {
        kv(
            "usage",
            format!(
                "{} in / {} out tokens",
                u.input_tokens.unwrap_or(0),
                u.output_tokens.unwrap_or(0)
            ),
        );
    }
    if r.demo {
        kv("cost", "free (demo)".into());
    } else if let Some(c) = r.cost_usd {
        // Priced from the tokens the server reported where it did, else estimated.
        let basis = if r.usage.as_ref().is_some_and(|u| u.output_tokens.is_some()) {
            "from usage"
        } else {
            "estimated"
        };
        kv("cost", format!("${c:.4} ({basis})"));
    }
    if let Some(id) = &r.request_id {
        kv("request id", id.clone());
    }
    if r.starred || r.rating > 0 {
        let n = usize::from(r.rating.min(5));
        kv(
            "rating",
            format!(
                "{}{}{}",
                if r.starred { "★ starred · " } else { "" },
                "●".repeat(n),
                "○".repeat(5 - n)
            ),
        );
    }
    if !r.tags.is_empty() {
        kv("tags", r.tags.join(", "));
    }
    if !r.notes.is_empty() {
        kv("notes", r.notes.clone());
    }
    for (i, o) in r.outputs.iter().enumerate() {
        kv(
            &format!("image {}", i + 1),
            format!(
                "{}x{} · {} KB · {}",
                o.width,
                o.height,
                o.bytes / 1024,
                o.path.display()
            ),
        );
    }
    if let Some(e) = &r.error {
        lines.push(Line::from(Span::styled(
            sanitize::line(&e.message).into_owned(),
            theme::error(),
        )));
        if let Some(h) = &e.hint {
            lines.push(Line::from(Span::styled(
                format!("hint: {}", sanitize::line(h)),
                theme::warn(),
            )));
        }
    }
    lines.push(Line::from(Span::styled("prompt", theme::dim())));
    for l in sanitize::text(&r.prompt).lines() {
        lines.push(Line::from(format!("  {l}")));
    }
    if let Some(rp) = &r.revised_prompt {
        lines.push(Line::from(Span::styled("revised prompt", theme::dim())));
        for l in sanitize::text(rp).lines() {
            lines.push(Line::from(format!("  {l}")));
        }
    }
    let at = centered(area, 90, area.height.saturating_sub(2));
    popup(
        f,
        at,
        " Details ",
        lines,
        " j/k scroll · any other key closes ",
        scroll,
    );
}

/// What a child is of the record shown.
fn child_role(role: crate::store::record::ParentRole) -> &'static str {
    use crate::store::record::ParentRole;
    match role {
        ParentRole::Edited => "edit of this",
        ParentRole::Reference => "uses this as a reference",
        ParentRole::MaskSource => "uses this as its mask",
        ParentRole::VariationOf => "variation of this",
        ParentRole::RerunOf => "rerun of this",
        ParentRole::ReusedFrom => "reuses this",
    }
}

/// An input picture in details: its history record and number where it has one, and its path.
fn input_text(input: &crate::api::InputImage) -> String {
    let path = sanitize::line(&input.path.display().to_string()).into_owned();
    match &input.record {
        Some(_) => format!("{} · {path}", crate::studio::update::input_label(input)),
        None => path,
    }
}

fn confirm(c: &Confirm, m: &Model, f: &mut Frame, area: Rect) {
    let jobs_outlive = m.jobs_outlive;
    let lines = match c {
        Confirm::Delete(r) => delete_lines(r),
        Confirm::ShutDownModel(_, why) => vec![
            Line::from(Span::styled(
                sanitize::line(why).into_owned(),
                theme::warn(),
            )),
            Line::from("Queue it anyway? y / n"),
        ],
        Confirm::Spend(_, why) | Confirm::Run(_, why) | Confirm::Batch(_, why) => {
            let mut lines: Vec<Line> = why
                .iter()
                .map(|w| Line::from(Span::styled(sanitize::line(w).into_owned(), theme::warn())))
                .collect();
            lines.push(Line::from(match c {
                Confirm::Run(jobs, _) => {
                    format!("Queue all {} jobs of the run anyway? y / n", jobs.len())
                }
                // Nothing is wrong with a batch: the question is whether to send it.
                Confirm::Batch(..) => "Send it as one batch? y / n".to_string(),
                _ => "Queue it anyway? y / n".to_string(),
            }));
            lines
        }
        Confirm::Quit if jobs_outlive => {
            let mine = m
                .queue
                .jobs
                .iter()
                .filter(|j| !j.record.status.is_final() && m.mine.contains(&j.record.id))
                .count();
            let others = m
                .queue
                .jobs
                .iter()
                .filter(|j| !j.record.status.is_final())
                .count()
                - mine;
            let what = match (mine, others) {
                (0, _) => "c quits too: none of them was queued here, and other programs' jobs are theirs.".to_string(),
                (n, 0) => format!("c cancels the {n} queued here."),
                (n, 1) => format!(
                    "c cancels the {n} queued here; the 1 of another program (an easel generate, another studio) goes on."
                ),
                (n, o) => format!(
                    "c cancels the {n} queued here; the {o} of other programs (an easel generate, another studio) go on."
                ),
            };
            vec![
                Line::from(
                    "Jobs are running or queued. y quits and lets them go on in the background (the next easel shows them).",
                ),
                Line::from(what),
            ]
        }
        Confirm::Quit => vec![Line::from(
            "Jobs are running. Quit anyway? They will be recorded as interrupted. y / n",
        )],
    };
    // Tall enough for every line as wrapped, plus the borders.
    let inner = usize::from(64.min(area.width).saturating_sub(2)).max(1);
    let height: usize = lines.iter().map(|l| l.width().div_ceil(inner).max(1)).sum();
    let at = centered(area, 64, (height + 2).min(usize::from(u16::MAX)) as u16);
    popup(
        f,
        at,
        " Confirm ",
        lines,
        match c {
            Confirm::Delete(_) => " y deletes · any other key keeps ",
            Confirm::Batch(..) => " y sends · any other key does not ",
            Confirm::ShutDownModel(..) | Confirm::Spend(..) | Confirm::Run(..) => {
                " y queues · any other key does not "
            }
            Confirm::Quit if jobs_outlive => {
                " y quits · c cancels ours, quits · any other key stays "
            }
            Confirm::Quit => " y quits · any other key stays ",
        },
        0,
    );
}

/// What a delete confirmation names: enough of the record to be sure it is the right one.
fn delete_lines(r: &GenerationRecord) -> Vec<Line<'static>> {
    let images = r.outputs.len();
    let size = r
        .outputs
        .first()
        .map(|o| format!("{}x{}", o.width, o.height))
        .or_else(|| r.params.size.clone())
        .unwrap_or_else(|| "default size".into());
    let prompt: String = sanitize::line(&r.prompt).chars().take(120).collect();
    let cut = if sanitize::line(&r.prompt).chars().count() > 120 {
        "…"
    } else {
        ""
    };
    let mut lines = vec![
        Line::from(Span::styled(format!("“{prompt}{cut}”"), theme::title(true))),
        Line::from(Span::styled(
            format!(
                "{} · {} · {} · {} · {images} image{} · {}",
                r.id.short(),
                r.created.with_timezone(&Local).format("%Y-%m-%d %H:%M"),
                sanitize::line(&r.model),
                sanitize::line(&size),
                if images == 1 { "" } else { "s" },
                r.status
            ),
            theme::dim(),
        )),
    ];
    if !r.status.is_final() {
        lines.push(Line::from(Span::styled(
            "It is still in the queue: deleting it cancels it.",
            theme::warn(),
        )));
    }
    lines.push(Line::from(format!(
        "Move it and its {} file{} to the trash? (u undoes) y / n",
        images,
        if images == 1 { "" } else { "s" }
    )));
    lines
}
