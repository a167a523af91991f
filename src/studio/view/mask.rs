//! The mask editor (issue 12): the first input picture drawn in half-blocks (two square dots a
//! cell), the area to edit tinted over it, the shape being placed outlined, and the keys.

use super::theme;
use crate::sanitize;
use crate::studio::keymap::{Action, Context};
use crate::studio::mask::{self, Shape};
use crate::studio::model::{MaskEdit, Model};
use crate::studio::update::mask_placement;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

/// What the area to edit is tinted toward, and how the shape's outline is drawn.
const TINT: [u8; 3] = [255, 0, 96];
const OUTLINE: [u8; 3] = [255, 230, 0];

pub fn draw(m: &Model, e: &MaskEdit, f: &mut Frame) {
    let g = mask::geometry(m.width, m.height);
    let name = e
        .path
        .file_name()
        .map(|n| sanitize::line(&n.to_string_lossy()).into_owned())
        .unwrap_or_default();
    let size = e
        .size
        .map(|(w, h)| format!(" · {w}x{h}"))
        .unwrap_or_default();
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme::border(true))
        .title(Span::styled(
            super::fit(
                &format!(" Mask · {name}{size} "),
                usize::from(g.frame.width.saturating_sub(4)),
            )
            .into_owned(),
            theme::title(true),
        ));
    f.render_widget(block, g.frame);
    let placement = mask_placement(m);
    match (placement, &e.error) {
        (_, Some(why)) => message(f, g.picture, why, theme::error()),
        (None, None) => message(f, g.picture, "reading the picture…", theme::dim()),
        (Some(p), None) => picture(f, e, &p),
    }
    footer(m, e, placement.as_ref(), f, g.footer);
}

fn message(f: &mut Frame, area: Rect, text: &str, style: Style) {
    f.render_widget(
        Paragraph::new(Span::styled(sanitize::line(text).into_owned(), style))
            .wrap(Wrap { trim: true }),
        area,
    );
}

fn blend(a: [u8; 3], b: [u8; 3], t: f32) -> [u8; 3] {
    let mix = |x: u8, y: u8| (f32::from(x) * (1.0 - t) + f32::from(y) * t).round() as u8;
    [mix(a[0], b[0]), mix(a[1], b[1]), mix(a[2], b[2])]
}

/// The colour of dot (gx, gy): the picture's (grey until it is read), tinted where it will be
/// edited, bright on the shape's outline.
fn dot(e: &MaskEdit, p: &mask::Placement, gx: u32, gy: u32) -> [u8; 3] {
    let base = e
        .base
        .as_ref()
        .filter(|b| (b.gw, b.gh) == (p.gw, p.gh))
        .and_then(|b| b.dots.get((gy * b.gw + gx) as usize).copied())
        .unwrap_or([60, 60, 60]);
    let (x, y) = p.dot_centre(gx, gy);
    let mut c = if mask::selected(&e.ops, x, y) {
        blend(base, TINT, 0.55)
    } else {
        base
    };
    let in_shape = |gx: u32, gy: u32| {
        let (x, y) = p.dot_centre(gx, gy);
        mask::inside(e.shape, &e.cursor, x, y)
    };
    if in_shape(gx, gy) {
        let edge = gx == 0
            || gy == 0
            || gx + 1 >= p.gw
            || gy + 1 >= p.gh
            || !in_shape(gx - 1, gy)
            || !in_shape(gx + 1, gy)
            || !in_shape(gx, gy - 1)
            || !in_shape(gx, gy + 1);
        if edge {
            c = OUTLINE;
        }
    }
    c
}

fn picture(f: &mut Frame, e: &MaskEdit, p: &mask::Placement) {
    let area = p.cells().intersection(f.area());
    let buf = f.buffer_mut();
    for row in 0..area.height {
        for col in 0..area.width {
            let gx = u32::from(col);
            let gy = u32::from(row) * 2;
            let upper = dot(e, p, gx, gy);
            let lower = (gy + 1 < p.gh).then(|| dot(e, p, gx, gy + 1));
            let cell = &mut buf[(area.x + col, area.y + row)];
            cell.set_symbol("▀");
            cell.set_fg(Color::Rgb(upper[0], upper[1], upper[2]));
            cell.set_bg(match lower {
                Some(c) => Color::Rgb(c[0], c[1], c[2]),
                None => Color::Reset,
            });
        }
    }
}

fn footer(m: &Model, e: &MaskEdit, p: Option<&mask::Placement>, f: &mut Frame, area: Rect) {
    if area.height == 0 {
        return;
    }
    let key = |a| m.keymap.hint(Context::Mask, a);
    // How much of the picture will be edited (by the dots shown).
    let share = p.map(|p| {
        let total = u64::from(p.gw) * u64::from(p.gh);
        let on = (0..p.gh)
            .flat_map(|gy| (0..p.gw).map(move |gx| (gx, gy)))
            .filter(|(gx, gy)| {
                let (x, y) = p.dot_centre(*gx, *gy);
                mask::selected(&e.ops, x, y)
            })
            .count() as u64;
        on * 100 / total.max(1)
    });
    let shape = match e.shape {
        Shape::Rect => "rectangle",
        Shape::Ellipse => "ellipse",
    };
    let c = &e.cursor;
    let status = format!(
        "{shape} {}x{} at {},{} · {} step{} · {}% of the picture to edit (tinted)",
        c.width(),
        c.height(),
        c.x0,
        c.y0,
        e.ops.len(),
        if e.ops.len() == 1 { "" } else { "s" },
        share.unwrap_or(0)
    );
    let keys = format!(
        "{} save · {} leave · {}{}{}{} move · {}{}{}{} size · {} add · {} subtract · {} shape · {} invert · {} clear · {} undo",
        key(Action::MaskSave),
        key(Action::MaskLeave),
        key(Action::Left),
        key(Action::Down),
        key(Action::Up),
        key(Action::Right),
        key(Action::Narrower),
        key(Action::Taller),
        key(Action::Shorter),
        key(Action::Wider),
        key(Action::MaskAdd),
        key(Action::MaskSubtract),
        key(Action::MaskShape),
        key(Action::MaskInvert),
        key(Action::MaskClear),
        key(Action::Undo),
    );
    let w = usize::from(area.width);
    let lines = vec![
        Line::from(Span::raw(super::fit(&status, w).into_owned())),
        Line::from(Span::styled(
            super::fit(&keys, w).into_owned(),
            theme::dim(),
        )),
    ];
    f.render_widget(Paragraph::new(lines), area);
}
