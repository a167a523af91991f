//! A run as a labelled grid: the column labels on top, the row labels on the left, a
//! thumbnail and a caption in each cell (failed and missing cells marked), the selected cell's
//! values and record under the grid.

use super::theme;
use crate::runs::layout::Mark;
use crate::sanitize;
use crate::studio::keymap::{Action, Context};
use crate::studio::model::Model;
use crate::studio::run_grid::{self, RunGrid};
use ratatui::Frame;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

pub fn draw(m: &Model, g: &RunGrid, f: &mut Frame) {
    let geo = run_grid::geometry(m, g);
    f.render_widget(Clear, geo.frame);
    let key = |a| m.keymap.hint(Context::History, a);
    let l = &g.layout;
    let mut title = format!(" Run {} ", g.run.short());
    if let Some(records) = &g.records {
        title.push_str(&format!("· {} of {} jobs ", records.len(), g.of()));
    }
    if l.pages.len() > 1 {
        let label = l.pages.get(g.page).map_or("", |p| p.label.as_str());
        title.push_str(&format!(
            "· page {}/{} {} ",
            g.page + 1,
            l.pages.len(),
            sanitize::line(label)
        ));
    }
    let mut bottom = String::new();
    if l.pages.len() > 1 {
        bottom.push_str(&format!(
            " {}/{} pages ·",
            key(Action::PageUp),
            key(Action::PageDown)
        ));
    }
    bottom.push_str(&format!(
        " {} details · {} full view · {} back ",
        key(Action::Details),
        key(Action::FullView),
        key(Action::ClearSearch)
    ));
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme::border(true))
        .title(Span::styled(title, theme::title(true)))
        .title_bottom(Line::from(bottom).right_aligned());
    f.render_widget(block, geo.frame);
    if g.records.is_none() {
        f.render_widget(
            Paragraph::new(Span::styled("reading the run…", theme::dim())),
            geo.grid,
        );
        return;
    }
    // The column labels, over their cells; the selected one stands out.
    let cells = run_grid::cells(m, g);
    for cell in cells.iter().filter(|c| c.row == geo.first_row) {
        let label = l.cols.labels.get(cell.col).map_or("", String::as_str);
        let style = if cell.col == g.col {
            theme::title(true)
        } else {
            theme::dim()
        };
        let area = ratatui::layout::Rect::new(
            cell.picture.x,
            geo.header.y,
            cell.picture.width,
            geo.header.height,
        );
        f.render_widget(
            Paragraph::new(Span::styled(
                super::centre(&sanitize::line(label), usize::from(area.width)),
                style,
            )),
            area,
        );
    }
    // The row labels, left of their row (wrapped over its lines).
    if geo.labels.width > 0 {
        for cell in cells.iter().filter(|c| c.col == geo.first_col) {
            let label = l.rows.labels.get(cell.row).map_or("", String::as_str);
            let style = if cell.row == g.row {
                theme::title(true)
            } else {
                theme::dim()
            };
            let area = ratatui::layout::Rect::new(
                geo.labels.x,
                cell.picture.y,
                geo.labels.width.saturating_sub(1),
                geo.cell_h,
            );
            f.render_widget(
                Paragraph::new(Span::styled(sanitize::line(label).into_owned(), style))
                    .wrap(Wrap { trim: true }),
                area,
            );
        }
    }
    for cell in &cells {
        let selected = (cell.row, cell.col) == (g.row, g.col);
        let mark = g.mark(g.page, cell.row, cell.col);
        let record = g.record(g.page, cell.row, cell.col);
        // A job not ended yet (queued, running) is no failure.
        let pending =
            matches!(mark, Mark::Failed(_)) && record.is_some_and(|r| !r.status.is_final());
        let caption = match (mark, record) {
            (Mark::Failed(_), Some(r)) if pending => format!("… {}", r.status),
            (Mark::Done(_), Some(r)) => {
                let rating = if r.rating > 0 {
                    format!(" {}", "★".repeat(usize::from(r.rating.min(5))))
                } else {
                    String::new()
                };
                format!("✓ {}{rating}", r.id.short())
            }
            (Mark::Failed(_), Some(r)) => format!("✗ {}", r.status),
            _ => "· missing".into(),
        };
        let style = match (selected, mark) {
            (true, _) => theme::selected(),
            (false, Mark::Failed(_)) if !pending => theme::error(),
            (false, _) => theme::dim(),
        };
        f.render_widget(
            Paragraph::new(Span::styled(
                super::centre(&caption, usize::from(cell.caption.width)),
                style,
            )),
            cell.caption,
        );
        // The picture, or what stands in for it.
        if let Some(k) = &cell.key {
            if let Some(rendered) = m.preview.get(k) {
                super::draw_picture(rendered, f, cell.picture);
                continue;
            }
            let text = match m.preview.failed_cells.iter().find(|(x, _)| x == k) {
                Some((_, why)) => sanitize::line(why).into_owned(),
                None => "…".into(),
            };
            f.render_widget(
                Paragraph::new(Span::styled(text, theme::dim())).wrap(Wrap { trim: true }),
                cell.picture,
            );
            continue;
        }
        let (text, style) = match (mark, record) {
            (Mark::Failed(_), Some(r)) if pending => (r.prompt.clone(), theme::dim()),
            (Mark::Failed(_), Some(r)) => (
                r.error
                    .as_ref()
                    .map(|e| e.message.clone())
                    .unwrap_or_else(|| r.status.to_string()),
                theme::error(),
            ),
            (Mark::Done(_), Some(r)) => (r.prompt.clone(), theme::dim()),
            _ => ("no job here in history".into(), theme::dim()),
        };
        f.render_widget(
            Paragraph::new(Span::styled(sanitize::line(&text).into_owned(), style))
                .wrap(Wrap { trim: true }),
            cell.picture,
        );
    }
    // The selected cell: its values, then its record.
    let row_label = l.rows.labels.get(g.row).map_or("", String::as_str);
    let col_label = l.cols.labels.get(g.col).map_or("", String::as_str);
    let mut values = Vec::new();
    if !l.rows.name.is_empty() {
        values.push(format!("{} {row_label}", l.rows.name));
    }
    if !l.cols.name.is_empty() {
        values.push(format!("{} {col_label}", l.cols.name));
    }
    let width = usize::from(geo.footer.width);
    let second = match g.selected() {
        Some(r) => format!(
            "{} · {} · {}",
            r.id.short(),
            r.status,
            sanitize::line(&r.prompt)
        ),
        None => "no record: the job is not in history".into(),
    };
    let lines = vec![
        Line::from(Span::raw(
            super::fit(&sanitize::line(&values.join(" · ")), width).into_owned(),
        )),
        Line::from(Span::styled(
            super::fit(&second, width).into_owned(),
            theme::dim(),
        )),
    ];
    f.render_widget(Paragraph::new(lines), geo.footer);
}
