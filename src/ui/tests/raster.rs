//! Turns a ratatui `Buffer` into a PNG: the picture a terminal would show for it.
//!
//! It exists for `screenshots/`, which the README shows: a text dump of a screen cannot show its
//! colors, its reverse-video selection or how its bars and sparklines read. It is test-only, and
//! its crates (`ab_glyph`, `png`, and `dejavu` for the font) are dev-dependencies, so the shipped
//! binary does not grow by a byte.
//!
//! Each cell is a `CELL_W` x `CELL_H` pixel box: its background, then its glyph in its
//! foreground color (after REVERSED, DIM, HIDDEN), with bold and italic faces of DejaVu Sans
//! Mono, and UNDERLINED and CROSSED_OUT as lines. Box drawing (light and heavy), block elements
//! and braille are drawn as rectangles and dots straight onto the cell grid, so lines join from
//! cell to cell and no gap in the font can show; every other character comes from the font. A
//! character the font lacks is drawn as a hollow box and listed in `Image::missing`, so a test can
//! insist there is none. Output depends only on the buffer: the same buffer gives the same bytes.

use std::collections::HashMap;

use ab_glyph::{Font, FontRef, PxScale, ScaleFont, point};
use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};

/// Pixel width of one cell.
pub const CELL_W: u32 = 9;
/// Pixel height of one cell.
pub const CELL_H: u32 = 18;

/// Coverage is kept in this many steps (plus zero): enough for smooth text, and few enough
/// distinct colors that a screenshot fits a 256-color palette, which keeps the PNG small.
const LEVELS: u8 = 15;

/// The terminal's default foreground and background (`Color::Reset`): a dark theme.
pub const DEFAULT_FG: [u8; 3] = [0xcc, 0xcc, 0xcc];
pub const DEFAULT_BG: [u8; 3] = [0x1e, 0x1e, 0x1e];

/// ANSI colors 0-15, a palette chosen to read well on `DEFAULT_BG`.
const ANSI: [[u8; 3]; 16] = [
    [0x00, 0x00, 0x00], // black
    [0xcd, 0x31, 0x31], // red
    [0x0d, 0xbc, 0x79], // green
    [0xe5, 0xe5, 0x10], // yellow
    [0x24, 0x72, 0xc8], // blue
    [0xbc, 0x3f, 0xbc], // magenta
    [0x11, 0xa8, 0xcd], // cyan
    [0xe5, 0xe5, 0xe5], // white (ratatui's Gray)
    [0x76, 0x76, 0x76], // bright black (ratatui's DarkGray)
    [0xf1, 0x4c, 0x4c], // bright red
    [0x23, 0xd1, 0x8b], // bright green
    [0xf5, 0xf5, 0x43], // bright yellow
    [0x3b, 0x8e, 0xea], // bright blue
    [0xd6, 0x70, 0xd6], // bright magenta
    [0x29, 0xb8, 0xdb], // bright cyan
    [0xff, 0xff, 0xff], // bright white (ratatui's White)
];

/// The RGB a terminal with this palette shows for `color`; `reset` is the default it stands for.
pub fn rgb(color: Color, reset: [u8; 3]) -> [u8; 3] {
    match color {
        Color::Reset => reset,
        Color::Black => ANSI[0],
        Color::Red => ANSI[1],
        Color::Green => ANSI[2],
        Color::Yellow => ANSI[3],
        Color::Blue => ANSI[4],
        Color::Magenta => ANSI[5],
        Color::Cyan => ANSI[6],
        Color::Gray => ANSI[7],
        Color::DarkGray => ANSI[8],
        Color::LightRed => ANSI[9],
        Color::LightGreen => ANSI[10],
        Color::LightYellow => ANSI[11],
        Color::LightBlue => ANSI[12],
        Color::LightMagenta => ANSI[13],
        Color::LightCyan => ANSI[14],
        Color::White => ANSI[15],
        Color::Rgb(r, g, b) => [r, g, b],
        Color::Indexed(i) => indexed(i),
    }
}

/// xterm's 256 colors: the 16 above, a 6x6x6 cube, then 24 grays.
fn indexed(i: u8) -> [u8; 3] {
    const STEPS: [u8; 6] = [0, 95, 135, 175, 215, 255];
    match i {
        0..=15 => ANSI[usize::from(i)],
        16..=231 => {
            let n = usize::from(i - 16);
            [STEPS[n / 36], STEPS[n / 6 % 6], STEPS[n % 6]]
        }
        _ => {
            let v = 8 + 10 * (i - 232);
            [v, v, v]
        }
    }
}

/// Light (1) and heavy (2) box-drawing lines, U+2500 to U+257F, as the weight of the arm going
/// up, right, down and left from the cell's centre; `----` (dashed, double, diagonal) is left to
/// the font. Rounded corners are drawn square.
const BOX: [&str; 16] = [
    "0101 0202 1010 2020 ---- ---- ---- ----", // ─━│┃┄┅┆┇
    "---- ---- ---- ---- 0110 0210 0120 0220", // ┈┉┊┋┌┍┎┏
    "0011 0012 0021 0022 1100 1200 2100 2200", // ┐┑┒┓└┕┖┗
    "1001 1002 2001 2002 1110 1210 2110 1120", // ┘┙┚┛├┝┞┟
    "2120 2210 1220 2220 1011 1012 2011 1021", // ┠┡┢┣┤┥┦┧
    "2021 2012 1022 2022 0111 0112 0211 0212", // ┨┩┪┫┬┭┮┯
    "0121 0122 0221 0222 1101 1102 1201 1202", // ┰┱┲┳┴┵┶┷
    "2101 2102 2201 2202 1111 1112 1211 1212", // ┸┹┺┻┼┽┾┿
    "2111 1121 2121 2112 2211 1122 1221 2212", // ╀╁╂╃╄╅╆╇
    "1222 2122 2221 2222 ---- ---- ---- ----", // ╈╉╊╋╌╍╎╏
    "---- ---- ---- ---- ---- ---- ---- ----", // ═║╒╓╔╕╖╗
    "---- ---- ---- ---- ---- ---- ---- ----", // ╘╙╚╛╜╝╞╟
    "---- ---- ---- ---- ---- ---- ---- ----", // ╠╡╢╣╤╥╦╧
    "---- ---- ---- ---- ---- 0110 0011 1001", // ╨╩╪╫╬╭╮╯
    "1100 ---- ---- ---- 0001 1000 0100 0010", // ╰╱╲╳╴╵╶╷
    "0002 2000 0200 0020 0201 1020 0102 2010", // ╸╹╺╻╼╽╾╿
];

/// Coverage of one glyph: `LEVELS`-step alpha over a `w` x `h` box at (`x0`, `y0`) from the
/// cell's top-left corner (it may reach outside the cell).
#[derive(Debug, Clone, Default)]
struct Mask {
    x0: i32,
    y0: i32,
    w: u32,
    h: u32,
    alpha: Vec<u8>,
}

impl Mask {
    fn cell() -> Mask {
        Mask {
            x0: 0,
            y0: 0,
            w: CELL_W,
            h: CELL_H,
            alpha: vec![0; (CELL_W * CELL_H) as usize],
        }
    }

    /// Fills cell pixels `x0..x1` x `y0..y1` (clipped to the cell) with `alpha`.
    fn fill(&mut self, x0: u32, y0: u32, x1: u32, y1: u32, alpha: u8) {
        for y in y0..y1.min(self.h) {
            for x in x0..x1.min(self.w) {
                self.alpha[(y * self.w + x) as usize] = alpha;
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.alpha.iter().all(|&a| a == 0)
    }
}

/// The rendered picture: `width` x `height` RGB pixels, row by row.
pub struct Image {
    pub width: u32,
    pub height: u32,
    pixels: Vec<[u8; 3]>,
    /// Characters the font has no glyph for (drawn as hollow boxes), each once, in order.
    pub missing: Vec<char>,
}

impl Image {
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        self.pixels[(y * self.width + x) as usize]
    }

    /// The pixels as R, G, B bytes, row by row.
    pub fn rgb(&self) -> Vec<u8> {
        self.pixels.as_flattened().to_vec()
    }

    /// The image as PNG bytes: 8-bit palette when it has at most 256 colors (a screenshot has),
    /// 8-bit RGB otherwise.
    pub fn png(&self) -> Vec<u8> {
        let mut index: HashMap<[u8; 3], u8> = HashMap::new();
        let mut palette: Vec<u8> = Vec::new();
        let mut indices = Vec::with_capacity(self.pixels.len());
        for p in &self.pixels {
            let i = match index.get(p) {
                Some(&i) => i,
                None => {
                    let Ok(i) = u8::try_from(index.len()) else {
                        return self.encode(png::ColorType::Rgb, None, self.pixels.as_flattened());
                    };
                    index.insert(*p, i);
                    palette.extend_from_slice(p);
                    i
                }
            };
            indices.push(i);
        }
        self.encode(png::ColorType::Indexed, Some(palette), &indices)
    }

    fn encode(&self, color: png::ColorType, palette: Option<Vec<u8>>, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, self.width, self.height);
        enc.set_color(color);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::High);
        if let Some(p) = palette {
            enc.set_palette(p);
            // Palette indices are labels, not intensities: differencing them only adds noise.
            enc.set_filter(png::Filter::NoFilter);
        }
        let mut writer = enc.write_header().expect("PNG header into memory");
        writer.write_image_data(data).expect("PNG data into memory");
        writer.finish().expect("PNG end into memory");
        out
    }
}

/// Which face of the font a cell is drawn in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Face {
    Regular = 0,
    Bold = 1,
    Oblique = 2,
    BoldOblique = 3,
}

impl Face {
    fn of(m: Modifier) -> Face {
        match (m.contains(Modifier::BOLD), m.contains(Modifier::ITALIC)) {
            (false, false) => Face::Regular,
            (true, false) => Face::Bold,
            (false, true) => Face::Oblique,
            (true, true) => Face::BoldOblique,
        }
    }
}

/// Draws buffers; keeps each glyph it has rasterised for the next cell that shows it.
pub struct Raster {
    fonts: [FontRef<'static>; 4],
    scale: PxScale,
    baseline: f32,
    glyphs: HashMap<(char, Face), Option<Mask>>,
}

impl Raster {
    pub fn new() -> Raster {
        let load = |bytes: &'static [u8]| {
            FontRef::try_from_slice(bytes).expect("the bundled DejaVu Sans Mono parses")
        };
        let fonts = [
            load(dejavu::sans_mono::regular()),
            load(dejavu::sans_mono::bold()),
            load(dejavu::sans_mono::oblique()),
            load(dejavu::sans_mono::bold_oblique()),
        ];
        // Size the font so one advance is exactly one cell wide; ab_glyph's scale is the
        // ascent-to-descent height in pixels. Centre that height in the cell.
        let regular = &fonts[0];
        let advance = regular.h_advance_unscaled(regular.glyph_id('M'));
        let scale = PxScale::from(CELL_W as f32 * regular.height_unscaled() / advance);
        let scaled = regular.as_scaled(scale);
        let pad = (CELL_H as f32 - (scaled.ascent() - scaled.descent())) / 2.0;
        let baseline = (pad + scaled.ascent()).round();
        Raster {
            fonts,
            scale,
            baseline,
            glyphs: HashMap::new(),
        }
    }

    /// The picture of `buf`: `CELL_W` x `CELL_H` pixels a cell.
    pub fn render(&mut self, buf: &Buffer) -> Image {
        let area = buf.area;
        let width = u32::from(area.width) * CELL_W;
        let height = u32::from(area.height) * CELL_H;
        let mut img = Image {
            width,
            height,
            pixels: vec![DEFAULT_BG; (width * height) as usize],
            missing: Vec::new(),
        };
        // Backgrounds first, then glyphs, so a glyph that reaches past its cell (a wide
        // character, an overhanging italic) is not painted over by its neighbour.
        let cells = || {
            (0..area.height).flat_map(move |y| {
                (0..area.width)
                    .map(move |x| (u32::from(x), u32::from(y), &buf[(area.x + x, area.y + y)]))
            })
        };
        for (cx, cy, cell) in cells() {
            let (_, bg) = colors(cell);
            for y in cy * CELL_H..(cy + 1) * CELL_H {
                let row = (y * width) as usize;
                img.pixels[row + (cx * CELL_W) as usize..row + ((cx + 1) * CELL_W) as usize]
                    .fill(bg);
            }
        }
        for (cx, cy, cell) in cells() {
            let (fg, _) = colors(cell);
            let (ox, oy) = ((cx * CELL_W) as i32, (cy * CELL_H) as i32);
            let face = Face::of(cell.modifier);
            if !cell.modifier.contains(Modifier::HIDDEN) {
                for ch in cell.symbol().chars().filter(|&c| !invisible(c)) {
                    let hollow;
                    let mask = match self.glyph(ch, face) {
                        Some(m) => m,
                        None => {
                            if !img.missing.contains(&ch) {
                                img.missing.push(ch);
                            }
                            hollow = tofu();
                            &hollow
                        }
                    };
                    blend(&mut img, ox, oy, mask, fg);
                }
            }
            let mut lines = Mask::cell();
            let base = self.baseline as u32;
            if cell.modifier.contains(Modifier::UNDERLINED) {
                lines.fill(0, base + 2, CELL_W, base + 3, LEVELS);
            }
            if cell.modifier.contains(Modifier::CROSSED_OUT) {
                lines.fill(0, base - 5, CELL_W, base - 4, LEVELS);
            }
            if !lines.is_empty() {
                blend(&mut img, ox, oy, &lines, fg);
            }
        }
        img
    }

    /// The coverage of `ch` in `face`, or `None` when the font has no glyph for it.
    fn glyph(&mut self, ch: char, face: Face) -> Option<&Mask> {
        if !self.glyphs.contains_key(&(ch, face)) {
            let mask = drawn(ch).or_else(|| self.outline(ch, face));
            self.glyphs.insert((ch, face), mask);
        }
        self.glyphs.get(&(ch, face)).and_then(Option::as_ref)
    }

    /// `ch` from the font in `face`, falling back to the regular face.
    fn outline(&self, ch: char, face: Face) -> Option<Mask> {
        let mut font = &self.fonts[face as usize];
        if font.glyph_id(ch).0 == 0 {
            font = &self.fonts[Face::Regular as usize];
        }
        let id = font.glyph_id(ch);
        if id.0 == 0 {
            return None;
        }
        let glyph = id.with_scale_and_position(self.scale, point(0.0, self.baseline));
        let Some(outline) = font.outline_glyph(glyph) else {
            return Some(Mask::default()); // a glyph with no ink, such as a space
        };
        let b = outline.px_bounds();
        let (w, h) = (b.width() as u32, b.height() as u32);
        let mut alpha = vec![0; (w * h) as usize];
        outline.draw(|x, y, c| {
            if x < w && y < h {
                alpha[(y * w + x) as usize] = (c.clamp(0.0, 1.0) * f32::from(LEVELS)).round() as u8;
            }
        });
        Some(Mask {
            x0: b.min.x as i32,
            y0: b.min.y as i32,
            w,
            h,
            alpha,
        })
    }
}

/// Zero-width joiners and variation selectors: nothing to draw, and no font needs them.
fn invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{2060}' | '\u{FE00}'..='\u{FE0F}')
}

/// The foreground and background a terminal shows for `cell`.
fn colors(cell: &ratatui::buffer::Cell) -> ([u8; 3], [u8; 3]) {
    let mut fg = rgb(cell.fg, DEFAULT_FG);
    let mut bg = rgb(cell.bg, DEFAULT_BG);
    if cell.modifier.contains(Modifier::REVERSED) {
        std::mem::swap(&mut fg, &mut bg);
    }
    if cell.modifier.contains(Modifier::DIM) {
        fg = mix(bg, fg, LEVELS / 2);
    }
    (fg, bg)
}

/// `a` toward `b` by `t` of `LEVELS`.
fn mix(a: [u8; 3], b: [u8; 3], t: u8) -> [u8; 3] {
    let l = u16::from(LEVELS);
    let t = u16::from(t);
    let m = |a: u8, b: u8| ((u16::from(a) * (l - t) + u16::from(b) * t + l / 2) / l) as u8;
    [m(a[0], b[0]), m(a[1], b[1]), m(a[2], b[2])]
}

fn blend(img: &mut Image, ox: i32, oy: i32, mask: &Mask, fg: [u8; 3]) {
    for my in 0..mask.h {
        let y = oy + mask.y0 + my as i32;
        if y < 0 || y >= img.height as i32 {
            continue;
        }
        for mx in 0..mask.w {
            let x = ox + mask.x0 + mx as i32;
            let a = mask.alpha[(my * mask.w + mx) as usize];
            if a == 0 || x < 0 || x >= img.width as i32 {
                continue;
            }
            let p = &mut img.pixels[(y as u32 * img.width + x as u32) as usize];
            *p = mix(*p, fg, a);
        }
    }
}

/// A hollow box: what a terminal shows for a character its font lacks.
fn tofu() -> Mask {
    let mut m = Mask::cell();
    let (x0, x1, y0, y1) = (1, CELL_W - 1, 3, CELL_H - 3);
    m.fill(x0, y0, x1, y0 + 1, LEVELS);
    m.fill(x0, y1 - 1, x1, y1, LEVELS);
    m.fill(x0, y0, x0 + 1, y1, LEVELS);
    m.fill(x1 - 1, y0, x1, y1, LEVELS);
    m
}

/// Box drawing, block elements and braille, drawn on the cell grid rather than taken from the
/// font: `None` for any other character.
fn drawn(ch: char) -> Option<Mask> {
    let c = u32::from(ch);
    match c {
        0x2500..=0x257F => box_lines(c - 0x2500),
        0x2580..=0x259F => Some(block(c)),
        0x2800..=0x28FF => Some(braille((c - 0x2800) as u8)),
        _ => None,
    }
}

fn box_lines(i: u32) -> Option<Mask> {
    let row = BOX[(i / 8) as usize].as_bytes();
    let at = (i % 8) as usize * 5;
    let arms = &row[at..at + 4];
    if arms[0] == b'-' {
        return None;
    }
    // Arms meet at the centre pixel; a heavy arm is three pixels thick, a light one one.
    let (cx, cy) = (CELL_W / 2, CELL_H / 2 - 1);
    let half = |w: u8| u32::from(w - b'0' == 2);
    let mut m = Mask::cell();
    let widest = arms.iter().map(|&w| half(w)).max().unwrap_or(0);
    let [up, right, down, left] = [arms[0], arms[1], arms[2], arms[3]];
    if up != b'0' {
        let t = half(up);
        m.fill(cx - t, 0, cx + t + 1, cy + widest + 1, LEVELS);
    }
    if down != b'0' {
        let t = half(down);
        m.fill(cx - t, cy - widest, cx + t + 1, CELL_H, LEVELS);
    }
    if left != b'0' {
        let t = half(left);
        m.fill(0, cy - t, cx + widest + 1, cy + t + 1, LEVELS);
    }
    if right != b'0' {
        let t = half(right);
        m.fill(cx - widest, cy - t, CELL_W, cy + t + 1, LEVELS);
    }
    Some(m)
}

/// U+2580 to U+259F: eighths, halves, shades and quadrants.
fn block(c: u32) -> Mask {
    let (w, h) = (CELL_W, CELL_H);
    let eighths = |n: u32, of: u32| (of * n + 4) / 8;
    let mut m = Mask::cell();
    match c {
        0x2580 => m.fill(0, 0, w, h / 2, LEVELS),
        0x2581..=0x2588 => m.fill(0, h - eighths(c - 0x2580, h), w, h, LEVELS),
        0x2589..=0x258F => m.fill(0, 0, eighths(0x2590 - c, w), h, LEVELS),
        0x2590 => m.fill(w / 2, 0, w, h, LEVELS),
        0x2591..=0x2593 => m.fill(0, 0, w, h, ((c - 0x2590) * u32::from(LEVELS) / 4) as u8),
        0x2594 => m.fill(0, 0, w, eighths(1, h), LEVELS),
        0x2595 => m.fill(w - eighths(1, w), 0, w, h, LEVELS),
        _ => {
            // Quadrants: bit 0 upper left, 1 upper right, 2 lower left, 3 lower right.
            const QUADS: [u8; 10] = [4, 8, 1, 13, 9, 7, 11, 2, 6, 14];
            let q = QUADS[(c - 0x2596) as usize];
            let (mx, my) = (w / 2, h / 2);
            for (bit, x0, y0, x1, y1) in [
                (1, 0, 0, mx, my),
                (2, mx, 0, w, my),
                (4, 0, my, mx, h),
                (8, mx, my, w, h),
            ] {
                if q & bit != 0 {
                    m.fill(x0, y0, x1, y1, LEVELS);
                }
            }
        }
    }
    m
}

/// U+2800 to U+28FF: dot `n` (bit `n - 1`) of the 2 x 4 grid, numbered down the left column
/// 1-2-3, down the right 4-5-6, then 7 and 8 along the bottom.
fn braille(bits: u8) -> Mask {
    const DOTS: [(u32, u32); 8] = [
        (0, 0),
        (0, 1),
        (0, 2),
        (1, 0),
        (1, 1),
        (1, 2),
        (0, 3),
        (1, 3),
    ];
    let mut m = Mask::cell();
    for (bit, (col, row)) in DOTS.iter().enumerate() {
        if bits & (1 << bit) != 0 {
            let x = CELL_W * (2 * col + 1) / 4 - 1;
            let y = CELL_H * (2 * row + 1) / 8 - 1;
            m.fill(x, y, x + 2, y + 2, LEVELS);
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use ratatui::buffer::Buffer;
    use ratatui::layout::Rect;
    use ratatui::style::{Color, Modifier, Style};

    use super::*;

    /// One row of cells, each a symbol and a style.
    fn row(cells: &[(&str, Style)]) -> Image {
        let mut buf = Buffer::empty(Rect::new(0, 0, cells.len() as u16, 1));
        for (x, (sym, style)) in cells.iter().enumerate() {
            buf[(x as u16, 0)].set_symbol(sym).set_style(*style);
        }
        Raster::new().render(&buf)
    }

    /// Every pixel of cell `x` in row 0.
    fn cell_pixels(img: &Image, x: u32) -> Vec<[u8; 3]> {
        (0..CELL_H)
            .flat_map(|py| (0..CELL_W).map(move |px| (x * CELL_W + px, py)))
            .map(|(px, py)| img.pixel(px, py))
            .collect()
    }

    fn ink(img: &Image, x: u32, fg: [u8; 3]) -> usize {
        cell_pixels(img, x).iter().filter(|&&p| p == fg).count()
    }

    #[test]
    fn the_image_is_the_grid_of_cells() {
        let buf = Buffer::empty(Rect::new(0, 0, 7, 3));
        let img = Raster::new().render(&buf);
        assert_eq!((img.width, img.height), (7 * CELL_W, 3 * CELL_H));
        assert!(img.pixels.iter().all(|&p| p == DEFAULT_BG));
    }

    #[test]
    fn cells_show_their_background_and_foreground() {
        let red = rgb(Color::Red, DEFAULT_FG);
        let img = row(&[
            (" ", Style::new().bg(Color::Rgb(1, 2, 3))),
            ("█", Style::new().fg(Color::Red).bg(Color::Blue)),
            ("A", Style::new().fg(Color::Red).bg(Color::Indexed(22))),
        ]);
        assert!(cell_pixels(&img, 0).iter().all(|&p| p == [1, 2, 3]));
        assert!(cell_pixels(&img, 1).iter().all(|&p| p == red));
        let a = cell_pixels(&img, 2);
        assert_eq!(a[0], [0, 95, 0], "the corner is background");
        assert!(a.contains(&red), "the letter has solid strokes");
        assert!(
            a.iter().any(|&p| p != red && p != [0, 95, 0]),
            "and smooth edges"
        );
    }

    #[test]
    fn reversed_swaps_and_dim_fades() {
        let img = row(&[
            (
                "█",
                Style::new()
                    .fg(Color::Green)
                    .add_modifier(Modifier::REVERSED),
            ),
            (" ", Style::new().add_modifier(Modifier::REVERSED)),
            (
                "█",
                Style::new().fg(Color::White).add_modifier(Modifier::DIM),
            ),
            (
                "█",
                Style::new().fg(Color::White).add_modifier(Modifier::HIDDEN),
            ),
        ]);
        assert_eq!(
            img.pixel(0, 0),
            DEFAULT_BG,
            "the block is in the old background"
        );
        assert_eq!(
            img.pixel(CELL_W, 0),
            DEFAULT_FG,
            "a reversed blank shows the fg"
        );
        let dim = img.pixel(2 * CELL_W, 0);
        assert!(
            dim[0] > DEFAULT_BG[0] + 0x60 && dim[0] < 0xff - 0x60,
            "dim white sits between white and the background: {dim:?}"
        );
        assert_eq!(img.pixel(3 * CELL_W, 0), DEFAULT_BG, "hidden draws nothing");
    }

    #[test]
    fn bold_is_heavier() {
        let fg = rgb(Color::Reset, DEFAULT_FG);
        let img = row(&[
            ("W", Style::new()),
            ("W", Style::new().add_modifier(Modifier::BOLD)),
        ]);
        let (regular, bold) = (ink(&img, 0, fg), ink(&img, 1, fg));
        assert!(
            regular > 0 && bold > regular,
            "regular {regular}, bold {bold}"
        );
    }

    #[test]
    fn box_lines_join_from_cell_to_cell() {
        let img = row(&[
            ("┌", Style::new()),
            ("─", Style::new()),
            ("┐", Style::new()),
        ]);
        let cy = CELL_H / 2 - 1;
        for x in CELL_W / 2..3 * CELL_W - CELL_W / 2 {
            assert_eq!(img.pixel(x, cy), DEFAULT_FG, "gap in the top edge at x={x}");
        }
        for y in cy..CELL_H {
            assert_eq!(
                img.pixel(CELL_W / 2, y),
                DEFAULT_FG,
                "gap in the left edge at y={y}"
            );
        }
        assert_eq!(
            img.pixel(CELL_W / 2, 0),
            DEFAULT_BG,
            "nothing above the corner"
        );
        assert!(img.missing.is_empty());
    }

    #[test]
    fn blocks_fill_their_share_of_the_cell() {
        let img = row(&[
            ("▄", Style::new()),
            ("▁", Style::new()),
            ("░", Style::new()),
        ]);
        let fg = DEFAULT_FG;
        assert_eq!(ink(&img, 0, fg), (CELL_W * CELL_H / 2) as usize);
        assert_eq!(img.pixel(0, CELL_H / 2), fg);
        assert_eq!(img.pixel(0, CELL_H / 2 - 1), DEFAULT_BG);
        assert_eq!(ink(&img, 1, fg), (CELL_W * ((CELL_H + 4) / 8)) as usize);
        let shade = img.pixel(2 * CELL_W, 0);
        assert!(
            shade != fg && shade != DEFAULT_BG,
            "a light shade: {shade:?}"
        );
    }

    #[test]
    fn braille_shows_its_dots() {
        let img = row(&[
            ("⠁", Style::new()),
            ("⣿", Style::new()),
            ("⠀", Style::new()),
        ]);
        assert_eq!(ink(&img, 0, DEFAULT_FG), 4, "one 2x2 dot");
        assert_eq!(ink(&img, 1, DEFAULT_FG), 8 * 4, "eight dots");
        assert_eq!(ink(&img, 2, DEFAULT_FG), 0, "blank braille");
        assert!(img.missing.is_empty());
    }

    #[test]
    fn a_character_the_font_lacks_is_a_hollow_box_and_reported() {
        let img = row(&[("字", Style::new()), ("…", Style::new())]);
        assert_eq!(img.missing, vec!['字']);
        assert!(ink(&img, 0, DEFAULT_FG) > 0);
    }

    #[test]
    fn the_256_colors() {
        assert_eq!(
            rgb(Color::Indexed(1), DEFAULT_FG),
            rgb(Color::Red, DEFAULT_FG)
        );
        assert_eq!(rgb(Color::Indexed(196), DEFAULT_FG), [255, 0, 0]);
        assert_eq!(rgb(Color::Indexed(231), DEFAULT_FG), [255, 255, 255]);
        assert_eq!(rgb(Color::Indexed(232), DEFAULT_FG), [8, 8, 8]);
        assert_eq!(rgb(Color::Indexed(255), DEFAULT_FG), [238, 238, 238]);
        assert_eq!(rgb(Color::Reset, DEFAULT_BG), DEFAULT_BG);
    }

    #[test]
    fn png_is_a_palette_image_of_the_same_pixels_and_the_same_bytes_each_time() {
        let img = row(&[
            (
                "a",
                Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
            ),
            ("█", Style::new().fg(Color::Yellow).bg(Color::Black)),
        ]);
        let bytes = img.png();
        assert_eq!(bytes, img.png());
        let mut dec = png::Decoder::new(std::io::Cursor::new(&bytes));
        dec.set_transformations(png::Transformations::EXPAND);
        let mut reader = dec.read_info().expect("a PNG header");
        assert_eq!(reader.info().color_type, png::ColorType::Indexed);
        let mut out = vec![0; reader.output_buffer_size().expect("a small image")];
        let info = reader.next_frame(&mut out).expect("PNG data");
        assert_eq!((info.width, info.height), (img.width, img.height));
        assert_eq!(&out[..info.buffer_size()], img.pixels.as_flattened());
    }
}
