//! Compare (issue 13): 2–4 marked images side by side at the largest size the screen allows, or
//! in blink mode (one place, a key switches between them, for spotting small differences), with
//! what differs in their parameters. Pure: where each picture goes, what each preview is, and
//! the differences, for `update` (what to render) and `view` (what to draw) alike.

use super::model::{Compared, Graphics, Model};
use super::msg::{PreviewKey, PreviewSource};
use crate::sanitize;
use crate::store::GenerationRecord;
use ratatui::layout::Rect;
use std::collections::BTreeSet;

/// Most images compared at once.
pub const MAX: usize = 4;

/// One picture of the compare screen.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// Which of the compared images (0 = A).
    pub index: usize,
    /// The caption line above the picture.
    pub caption: Rect,
    pub picture: Rect,
    /// What to render there (`None` without graphics or without an image file).
    pub key: Option<PreviewKey>,
}

/// The letter of the `i`-th compared image.
pub fn letter(i: usize) -> char {
    char::from(b'A' + u8::try_from(i.min(25)).unwrap_or(0))
}

/// The screen's parts: a title line, the pictures, the differences below them (one line per
/// image after A), and the status line at the bottom.
pub fn regions(width: u16, height: u16, n: usize) -> (Rect, Rect, Rect) {
    let diff_rows = u16::try_from(n.saturating_sub(1).max(1)).unwrap_or(1);
    let title = Rect::new(0, 0, width, 1.min(height));
    let body_h = height.saturating_sub(2 + diff_rows);
    let body = Rect::new(0, 1.min(height), width, body_h);
    let diff = Rect::new(
        0,
        body.bottom(),
        width,
        diff_rows.min(height.saturating_sub(body.bottom())),
    );
    (title, body, diff)
}

/// Where each picture goes: one place in blink mode; otherwise side by side, or two by two for
/// four images on a screen taller than half its width in cells.
pub fn cells(m: &Model, c: &Compared) -> Vec<Cell> {
    let (_, body, _) = regions(m.width, m.height, c.items.len());
    let n = c.items.len().max(1);
    let places: Vec<(usize, Rect)> = if c.blink {
        vec![(c.shown.min(n - 1), body)]
    } else if n == 4 && body.height * 4 >= body.width {
        let (w, h) = (body.width / 2, body.height / 2);
        (0..4)
            .map(|i| {
                let (col, row) = (
                    u16::try_from(i % 2).unwrap_or(0),
                    u16::try_from(i / 2).unwrap_or(0),
                );
                (i, Rect::new(body.x + col * w, body.y + row * h, w, h))
            })
            .collect()
    } else {
        let w = body.width / u16::try_from(n).unwrap_or(1);
        (0..n)
            .map(|i| {
                (
                    i,
                    Rect::new(
                        body.x + u16::try_from(i).unwrap_or(0) * w,
                        body.y,
                        w,
                        body.height,
                    ),
                )
            })
            .collect()
    };
    places
        .into_iter()
        .map(|(index, area)| {
            let caption = Rect {
                height: 1.min(area.height),
                ..area
            };
            // A column between pictures side by side.
            let gap = u16::from(!c.blink && n > 1);
            let picture = Rect::new(
                area.x,
                area.y + 1,
                area.width.saturating_sub(gap),
                area.height.saturating_sub(1),
            );
            let key = key_for(m, c, index, picture);
            Cell {
                index,
                caption,
                picture,
                key,
            }
        })
        .collect()
}

fn key_for(m: &Model, c: &Compared, index: usize, picture: Rect) -> Option<PreviewKey> {
    if m.graphics == Graphics::None || picture.width < 4 || picture.height < 2 {
        return None;
    }
    let item = c.items.get(index)?;
    let out = item.record.outputs.get(item.image)?;
    let path = if out.path.is_absolute() {
        out.path.clone()
    } else {
        m.data_dir.join(&out.path)
    };
    Some(PreviewKey {
        source: PreviewSource::Compared(path),
        cols: picture.width,
        rows: picture.height,
    })
}

/// A picture's caption: letter, short id, image, model, size, rating.
pub fn caption(c: &Compared, index: usize) -> String {
    let Some(item) = c.items.get(index) else {
        return String::new();
    };
    let r = &item.record;
    let size = r
        .outputs
        .get(item.image)
        .map(|o| format!("{}x{}", o.width, o.height))
        .unwrap_or_default();
    let image = if r.outputs.len() > 1 {
        format!(" #{}", item.image + 1)
    } else {
        String::new()
    };
    let rating = if r.rating > 0 {
        format!(" {}", "★".repeat(usize::from(r.rating.min(5))))
    } else {
        String::new()
    };
    format!(
        "{} {}{image} · {} · {size}{rating}",
        letter(index),
        r.id.short(),
        sanitize::line(&r.model)
    )
}

fn words(prompt: &str) -> BTreeSet<String> {
    sanitize::line(prompt)
        .split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| c.is_ascii_punctuation())
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// What differs between `b` and `a`: prompt words added and removed, then each parameter that
/// changed. Empty when they were made the same way (two images of one generation).
pub fn differences(a: &GenerationRecord, b: &GenerationRecord) -> Vec<String> {
    let mut out = Vec::new();
    let (wa, wb) = (words(&a.prompt), words(&b.prompt));
    let added: Vec<&str> = wb.difference(&wa).map(String::as_str).collect();
    let removed: Vec<&str> = wa.difference(&wb).map(String::as_str).collect();
    if !added.is_empty() {
        out.push(format!("+{}", added.join(" +")));
    }
    if !removed.is_empty() {
        out.push(format!("−{}", removed.join(" −")));
    }
    let (pa, pb) = (&a.params, &b.params);
    let show = |v: &Option<String>| {
        v.as_deref()
            .map_or("default".to_string(), |s| sanitize::line(s).into_owned())
    };
    if a.model != b.model {
        out.push(format!(
            "model {} → {}",
            sanitize::line(&a.model),
            sanitize::line(&b.model)
        ));
    }
    for (name, x, y) in [
        ("size", &pa.size, &pb.size),
        ("quality", &pa.quality, &pb.quality),
        ("background", &pa.background, &pb.background),
        ("format", &pa.output_format, &pb.output_format),
        ("moderation", &pa.moderation, &pb.moderation),
        ("style", &pa.style, &pb.style),
    ] {
        if x != y {
            out.push(format!("{name} {} → {}", show(x), show(y)));
        }
    }
    if pa.output_compression != pb.output_compression {
        let c = |v: Option<u8>| v.map_or("default".to_string(), |n| n.to_string());
        out.push(format!(
            "compression {} → {}",
            c(pa.output_compression),
            c(pb.output_compression)
        ));
    }
    if a.provider != b.provider {
        out.push(format!(
            "provider {} → {}",
            sanitize::line(&a.provider),
            sanitize::line(&b.provider)
        ));
    }
    out
}

/// The difference line of image `index` (B, C, D) against A.
pub fn difference_line(c: &Compared, index: usize) -> String {
    let (Some(a), Some(b)) = (c.items.first(), c.items.get(index)) else {
        return String::new();
    };
    let d = differences(&a.record, &b.record);
    let what = if d.is_empty() {
        if a.record.id == b.record.id {
            "same generation: same prompt and parameters".to_string()
        } else {
            "same prompt and parameters".to_string()
        }
    } else {
        d.join(" · ")
    };
    format!("{} vs A: {what}", letter(index))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::GenerationParams;
    use crate::store::Id;

    fn rec(prompt: &str, f: impl FnOnce(&mut GenerationParams)) -> GenerationRecord {
        let mut p = GenerationParams {
            prompt: prompt.into(),
            ..Default::default()
        };
        f(&mut p);
        GenerationRecord::queued(Id::new(), p, "demo", true, chrono::Utc::now())
    }

    #[test]
    fn differences_name_words_and_parameters() {
        let a = rec("a red fox in snow, morning", |p| {
            p.size = Some("1024x1024".into())
        });
        let cases: Vec<(GenerationRecord, Vec<&str>)> = vec![
            (
                rec("a red fox in snow, morning", |p| {
                    p.size = Some("1024x1024".into())
                }),
                vec![],
            ),
            (
                rec("a red fox in snow at night", |p| {
                    p.size = Some("1024x1024".into())
                }),
                vec!["+at +night", "−morning"],
            ),
            (
                rec("a red fox in snow, morning", |p| {
                    p.size = Some("1536x1024".into());
                    p.quality = Some("high".into());
                }),
                vec!["size 1024x1024 → 1536x1024", "quality default → high"],
            ),
            // Case and punctuation are not differences.
            (
                rec("A Red Fox in snow morning!", |p| {
                    p.size = Some("1024x1024".into())
                }),
                vec![],
            ),
        ];
        for (b, want) in cases {
            assert_eq!(differences(&a, &b), want, "{}", b.prompt);
        }
    }

    #[test]
    fn hostile_text_in_differences_is_clean() {
        let a = rec("fox", |_| {});
        let b = rec("fox \u{1b}[2Jwolf", |p| {
            p.quality = Some("\u{1b}]52;c;x\u{7}hi".into())
        });
        for line in differences(&a, &b) {
            assert!(!line.chars().any(char::is_control), "{line:?}");
        }
    }

    #[test]
    fn letters_go_a_to_d() {
        assert_eq!((0..4).map(letter).collect::<String>(), "ABCD");
    }
}
