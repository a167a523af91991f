//! The status line: provider and model (with a clear DEMO mark), queue counts, spend this
//! session, and the latest message (errors stay until read).

use super::theme;
use crate::sanitize;
use crate::studio::model::Model;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

pub fn draw(m: &Model, f: &mut Frame, area: Rect) {
    if area.width == 0 || area.height == 0 {
        return;
    }
    let mut spans = Vec::new();
    if m.provider.demo {
        spans.push(Span::styled(" DEMO ", theme::demo()));
        spans.push(Span::raw(" "));
    } else {
        spans.push(Span::styled(
            format!(" {} ", sanitize::line(&m.provider.name)),
            theme::key(),
        ));
    }
    spans.push(Span::raw(sanitize::line(&m.params.model).into_owned()));
    spans.push(Span::styled(
        format!("  {}▶ {}·", m.queue.running(), m.queue.waiting()),
        theme::dim(),
    ));
    if m.queue.paused {
        spans.push(Span::styled(" paused", theme::warn()));
    }
    if let Some(until) = m.rate_limited_until.filter(|u| *u > m.now) {
        let secs = ((until - m.now).num_milliseconds().max(0) + 999) / 1000;
        spans.push(Span::styled(
            format!("  rate limited · resuming in {secs} s"),
            theme::warn(),
        ));
    }
    match m.spent() {
        // Today's and this month's spend (history and this session), against the budgets.
        Some(spent) => {
            let of = |limit: Option<f64>| limit.map(|l| format!("/${l:.2}")).unwrap_or_default();
            let over = |line: &crate::store::SpendLine, limit: Option<f64>| {
                limit.is_some_and(|l| line.usd >= l)
            };
            let style = if over(&spent.today, m.budget.daily_usd)
                || over(&spent.month, m.budget.monthly_usd)
            {
                theme::warn()
            } else {
                theme::dim()
            };
            spans.push(Span::styled(
                format!(
                    "  today {}{} · month {}{}",
                    spent.today.label().replace("≈ ", "≈"),
                    of(m.budget.daily_usd),
                    spent.month.label().replace("≈ ", "≈"),
                    of(m.budget.monthly_usd)
                ),
                style,
            ));
        }
        None => {
            let approx = if m.spend_estimated { "≈" } else { "" };
            spans.push(Span::styled(
                format!("  {approx}${:.2}", m.spend),
                theme::dim(),
            ));
        }
    }
    match m.current_notice() {
        Some(n) => {
            spans.push(Span::raw("  "));
            let text_width = sanitize::line(&n.text).chars().count();
            let used: usize = spans.iter().map(|s| s.width()).sum();
            // An error that does not fit beside the rest takes the line: what went wrong and
            // what to do matter more than the model and the spend (the DEMO mark stays).
            if n.error && used + text_width > usize::from(area.width) {
                spans.truncate(usize::from(m.provider.demo) * 2);
                if spans.is_empty() {
                    spans.push(Span::raw(" "));
                }
            }
            // Cut to the room left, with an ellipsis, rather than at the screen's edge.
            let used: usize = spans.iter().map(|s| s.width()).sum();
            let room = usize::from(area.width).saturating_sub(used);
            spans.push(Span::styled(
                super::fit(&sanitize::line(&n.text), room).into_owned(),
                if n.error { theme::error() } else { theme::ok() },
            ));
        }
        None => {
            spans.push(Span::styled(
                format!(
                    "  {} help",
                    m.keymap.hint(
                        crate::studio::keymap::Context::Global,
                        crate::studio::keymap::Action::Help
                    )
                ),
                theme::dim(),
            ));
        }
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}
