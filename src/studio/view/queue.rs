//! The queue pane: running and waiting jobs, with state, prompt excerpt, model and size,
//! elapsed time and attempts.

use super::theme;
use crate::sanitize;
use crate::store::Status;
use crate::studio::model::{Model, Pane};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

pub fn status_icon(s: Status) -> (&'static str, Style) {
    match s {
        Status::Queued => ("·", theme::dim()),
        Status::Running => ("▶", theme::warn()),
        Status::Succeeded => ("✓", theme::ok()),
        Status::Failed => ("✗", theme::error()),
        // Not ⊘: many terminal fonts lack it.
        Status::Cancelled => ("–", theme::dim()),
        Status::Interrupted => ("!", theme::warn()),
    }
}

pub fn draw(m: &Model, f: &mut Frame, area: Rect) {
    if area.width < 3 || area.height < 2 {
        return;
    }
    let focused = m.focus == Pane::Queue;
    let (running, waiting) = (m.queue.running(), m.queue.waiting());
    let paused = if m.queue.paused { " · PAUSED" } else { "" };
    let title = format!(" Queue {running}▶ {waiting}·{paused} ");
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme::border(focused))
        .title(Span::styled(
            title,
            if m.queue.paused {
                theme::warn()
            } else {
                theme::title(focused)
            },
        ));
    let inner = block.inner(area);
    f.render_widget(block, area);
    if m.queue.jobs.is_empty() {
        let hint = if m.provider.demo {
            "empty — write a prompt and press Ctrl-S (demo backend: free, offline)"
        } else {
            "empty — write a prompt and press Ctrl-S"
        };
        let hint = super::fit(hint, usize::from(inner.width));
        f.render_widget(Paragraph::new(Span::styled(hint, theme::dim())), inner);
        return;
    }
    let rows = usize::from(inner.height);
    let width = usize::from(inner.width);
    // A run's jobs are together (the update keeps them so), under a header row of the run.
    let mut lines: Vec<Line> = Vec::with_capacity(m.queue.jobs.len() + m.queue.runs.len());
    let mut selected_row = 0;
    let mut previous_run = None;
    for (i, j) in m.queue.jobs.iter().enumerate() {
        let run = j.record.run.as_ref().map(|r| r.id);
        if let Some(id) = run
            && previous_run != Some(id)
            && let Some(tally) = m.queue.runs.get(&id)
        {
            let text = crate::studio::runs::header_text(tally, m.queue.run_counts(id));
            let style = if tally.paused {
                theme::warn()
            } else {
                theme::title(false)
            };
            lines.push(Line::from(Span::styled(
                super::fit(&format!("▾ {text}"), width).into_owned(),
                style,
            )));
        }
        previous_run = run;
        if i == m.queue.selected {
            selected_row = lines.len();
        }
        lines.push(job_line(m, i, j, width, focused));
    }
    let start = selected_row.saturating_sub(rows.saturating_sub(1));
    let lines: Vec<Line> = lines.into_iter().skip(start).take(rows).collect();
    f.render_widget(Paragraph::new(lines), inner);
}

/// One job's row.
fn job_line(
    m: &Model,
    i: usize,
    j: &crate::studio::model::JobView,
    width: usize,
    focused: bool,
) -> Line<'static> {
    {
        {
            let r = &j.record;
            let (icon, style) = status_icon(r.status);
            let elapsed = match (r.status, r.started) {
                (Status::Running, Some(s)) => format!("{:>4}s", (m.now - s).num_seconds().max(0)),
                _ => "     ".into(),
            };
            let size = r.params.size.as_deref().unwrap_or("auto");
            let extra = match (&j.note, j.partial) {
                (Some(note), _) => format!(" {note}"),
                (None, Some(p)) => format!(" partial {}", p + 1),
                // Sent through the Batch API: it waits for its batch, polled by the service.
                (None, None) if r.batch.is_some() => {
                    let id = r.batch.as_ref().map(|b| b.id.as_str()).unwrap_or_default();
                    let state = m
                        .queue
                        .batch_states
                        .get(id)
                        .map(|s| format!(" · {}", sanitize::line(s)))
                        .unwrap_or_default();
                    let under_header = r
                        .run
                        .as_ref()
                        .is_some_and(|run| m.queue.runs.contains_key(&run.id));
                    if under_header {
                        // The header names the batch: the row keeps its room for the label.
                        format!(" in batch{state}")
                    } else {
                        format!(
                            " in batch {}{state}",
                            sanitize::truncate(&sanitize::line(id), 20)
                        )
                    }
                }
                _ => String::new(),
            };
            // An edit says so (its title), and how many references it sends besides the
            // picture edited, as the strip counts them.
            let pictures = r.params.images.len();
            let edit = match pictures.saturating_sub(1) {
                0 => String::new(),
                1 => " 1 ref".to_string(),
                n => format!(" {n} refs"),
            };
            // A job waiting in a batch has no attempts or time of its own here.
            let tries = if r.batch.is_some() {
                String::new()
            } else {
                format!(" a{}{elapsed}", r.attempts)
            };
            let mut meta = format!(
                "{edit} {} {} ×{}{tries}",
                sanitize::truncate(&sanitize::line(&r.model), 14),
                sanitize::line(size),
                r.params.n,
            );
            // A job in a batch, in a narrow pane, keeps a third of the row for what it is: the
            // model and size give way first.
            if r.batch.is_some()
                && width.saturating_sub(meta.chars().count() + extra.chars().count() + 2)
                    < width / 3
            {
                meta.clear();
            }
            // A job under its run's header, in a narrow pane, keeps half the row for its values:
            // the model and size (the same for the run's jobs) give way, the attempt and the
            // time stay.
            let under_header = r
                .run
                .as_ref()
                .is_some_and(|run| m.queue.runs.contains_key(&run.id));
            if under_header
                && width.saturating_sub(meta.chars().count() + extra.chars().count() + 2)
                    < width / 2
            {
                meta = format!("{edit}{tries}");
            }
            let room = width
                .saturating_sub(meta.chars().count() + extra.chars().count() + 2)
                .max(4);
            // A run's job says where it stands in its run and what sets it apart; an edit
            // says so.
            let what = if pictures > 0 {
                format!("edit of {}", r.prompt)
            } else {
                r.prompt.clone()
            };
            let label = match &r.run {
                // Under its run's header: only what sets it apart.
                Some(run) if m.queue.runs.contains_key(&run.id) => {
                    let values = run.values_label();
                    if values.is_empty() {
                        format!("  {}/{} · {what}", run.index, run.of)
                    } else {
                        format!("  {}/{} · {values} · {what}", run.index, run.of)
                    }
                }
                Some(run) => {
                    let values = run.values_label();
                    if values.is_empty() {
                        format!("run {}/{} · {what}", run.index, run.of)
                    } else {
                        format!("run {}/{} · {values} · {what}", run.index, run.of)
                    }
                }
                None => what,
            };
            let prompt = super::pad(&sanitize::line(&label), room);
            let extra = super::fit(
                &extra,
                width.saturating_sub(room + meta.chars().count() + 2),
            )
            .into_owned();
            let line = Line::from(vec![
                Span::styled(format!("{icon} "), style),
                Span::raw(prompt),
                Span::styled(meta, theme::dim()),
                Span::styled(extra, theme::warn()),
            ]);
            if focused && i == m.queue.selected {
                super::selected_line(line)
            } else {
                line
            }
        }
    }
}
