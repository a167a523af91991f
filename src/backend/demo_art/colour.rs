//! RGB colours and the small numeric helpers the painters share.

/// Linear-ish RGB in 0..=1 (we stay in sRGB space; it is a cartoon).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Rgb {
    pub(super) r: f32,
    pub(super) g: f32,
    pub(super) b: f32,
}

impl Rgb {
    pub(super) const WHITE: Rgb = Rgb {
        r: 1.0,
        g: 1.0,
        b: 1.0,
    };

    pub(super) fn scale(self, k: f32) -> Rgb {
        Rgb {
            r: self.r * k,
            g: self.g * k,
            b: self.b * k,
        }
    }
}

pub(super) fn mix(a: Rgb, b: Rgb, t: f32) -> Rgb {
    Rgb {
        r: a.r + (b.r - a.r) * t,
        g: a.g + (b.g - a.g) * t,
        b: a.b + (b.b - a.b) * t,
    }
}

pub(super) fn hsl(h: f32, s: f32, l: f32) -> Rgb {
    let h = h.rem_euclid(360.0) / 60.0;
    let s = s.clamp(0.0, 1.0);
    let l = l.clamp(0.0, 1.0);
    let c = (1.0 - (2.0 * l - 1.0).abs()) * s;
    let x = c * (1.0 - (h % 2.0 - 1.0).abs());
    let m = l - c / 2.0;
    let (r, g, b) = match h as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    Rgb {
        r: r + m,
        g: g + m,
        b: b + m,
    }
}

pub(super) fn to_u8(v: f32) -> u8 {
    // `as` saturates (and maps NaN to 0), so this can never wrap.
    (v * 255.0 + 0.5) as u8
}

pub(super) fn clamp01(v: f32) -> f32 {
    v.clamp(0.0, 1.0)
}

/// Length of the overlap of [a0, a1] and [b0, b1].
pub(super) fn overlap(a0: f32, a1: f32, b0: f32, b1: f32) -> f32 {
    (a1.min(b1) - a0.max(b0)).max(0.0)
}
