//! Charts for safetyscope results, rendered as standalone SVG documents that
//! work in a browser, a notebook and a file alike. Text from data is always
//! escaped; Chinese labels render through a font list with CJK fonts.

#![deny(missing_docs)]

use std::fmt::Write as _;

/// Font list used by every chart: Latin first, then common CJK fonts.
pub const FONT_FAMILY: &str = "'Inter','Helvetica Neue',Arial,'Noto Sans CJK SC','Source Han Sans SC','PingFang SC','Microsoft YaHei','WenQuanYi Micro Hei',sans-serif";

/// Escape text for SVG/XML content and attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

/// One cell of a grid chart.
#[derive(Debug, Clone, PartialEq)]
pub struct GridCell {
    /// Grid row (0 = top); `None` for cells outside the plan.
    pub row: Option<u32>,
    /// Grid column (0 = left).
    pub col: Option<u32>,
    /// Short label drawn in the cell.
    pub label: String,
    /// Value mapped to the colour scale.
    pub value: f64,
    /// Value text drawn in the cell.
    pub text: String,
    /// Hover text (`<title>`).
    pub title: String,
    /// Explicit fill colour (overrides the scale), e.g. a risk level colour.
    pub fill: Option<String>,
}

/// A grid chart (a site plan coloured by a value).
#[derive(Debug, Clone, PartialEq)]
pub struct GridChart {
    /// Title above the grid.
    pub title: String,
    /// Legend caption of the colour scale.
    pub legend: String,
    /// Categorical legend (colour, label); when empty a sequential ramp from
    /// 0 to the maximum value is drawn.
    pub legend_items: Vec<(String, String)>,
    /// The cells.
    pub cells: Vec<GridCell>,
}

/// Sequential colour scale (light yellow → dark red) for t in [0, 1].
pub fn sequential_color(t: f64) -> String {
    const STOPS: [(f64, [u8; 3]); 5] = [
        (0.0, [255, 255, 229]),
        (0.25, [254, 227, 145]),
        (0.5, [254, 153, 41]),
        (0.75, [217, 95, 14]),
        (1.0, [153, 52, 4]),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let mut i = 0;
    while i + 1 < STOPS.len() - 1 && t > STOPS[i + 1].0 {
        i += 1;
    }
    let (t0, c0) = STOPS[i];
    let (t1, c1) = STOPS[i + 1];
    let f = if t1 > t0 { (t - t0) / (t1 - t0) } else { 0.0 };
    let mix = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * f).round() as u8;
    format!(
        "#{:02x}{:02x}{:02x}",
        mix(c0[0], c1[0]),
        mix(c0[1], c1[1]),
        mix(c0[2], c1[2])
    )
}

/// Whether dark text is readable on a `#rrggbb` background.
fn dark_text_on(fill: &str) -> bool {
    let hex = fill.trim_start_matches('#');
    if hex.len() != 6 {
        return true;
    }
    let c = |i: usize| f64::from(u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(255));
    0.299 * c(0) + 0.587 * c(2) + 0.114 * c(4) > 140.0
}

/// Render a grid chart as SVG.
pub fn grid_svg(chart: &GridChart) -> String {
    let size = 72.0;
    let margin = 40.0;
    let placed: Vec<&GridCell> = chart
        .cells
        .iter()
        .filter(|c| c.row.is_some() && c.col.is_some())
        .collect();
    let unplaced: Vec<&GridCell> = chart
        .cells
        .iter()
        .filter(|c| c.row.is_none() || c.col.is_none())
        .collect();
    let rows = placed
        .iter()
        .filter_map(|c| c.row)
        .max()
        .map_or(0, |r| r + 1);
    let cols = placed
        .iter()
        .filter_map(|c| c.col)
        .max()
        .map_or(0, |c| c + 1);
    let max = chart.cells.iter().map(|c| c.value).fold(0.0f64, f64::max);
    let width = margin * 2.0 + f64::from(cols.max(4)) * size;
    let height = margin * 2.0 + f64::from(rows) * size + 76.0 + 18.0 * unplaced.len() as f64;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="{}" role="img" aria-label="{}">"#,
        escape(FONT_FAMILY),
        escape(&chart.title)
    );
    let _ = write!(
        s,
        r#"<rect width="100%" height="100%" fill="white"/><text x="{margin}" y="24" font-size="16" font-weight="600">{}</text>"#,
        escape(&chart.title)
    );
    for c in &placed {
        let (r, k) = (f64::from(c.row.unwrap_or(0)), f64::from(c.col.unwrap_or(0)));
        let (x, y) = (margin + k * size, margin + r * size);
        let fill = c
            .fill
            .clone()
            .unwrap_or_else(|| sequential_color(if max > 0.0 { c.value / max } else { 0.0 }));
        let ink = if dark_text_on(&fill) { "#111" } else { "#fff" };
        let _ = write!(
            s,
            r##"<g class="cell" data-cell="{label}" data-value="{value}"><title>{title}</title><rect x="{x}" y="{y}" width="{size}" height="{size}" fill="{fill}" stroke="#555" stroke-width="1"/><text x="{tx}" y="{ty}" font-size="11" fill="{ink}" text-anchor="middle">{label}</text><text x="{tx}" y="{vy}" font-size="16" font-weight="600" fill="{ink}" text-anchor="middle">{text}</text></g>"##,
            label = escape(&c.label),
            value = c.value,
            title = escape(&c.title),
            tx = x + size / 2.0,
            ty = y + 18.0,
            vy = y + size / 2.0 + 12.0,
            text = escape(&c.text),
        );
    }
    let ly = margin + f64::from(rows) * size + 16.0;
    if chart.legend_items.is_empty() {
        // A five-step ramp from 0 to the maximum.
        for i in 0..5 {
            let t = f64::from(i) / 4.0;
            let _ = write!(
                s,
                r##"<rect x="{}" y="{ly}" width="30" height="12" fill="{}" stroke="#999" stroke-width="0.5"/>"##,
                margin + f64::from(i) * 30.0,
                sequential_color(t)
            );
        }
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" font-size="11">{} 0 – {}</text>"#,
            margin + 160.0,
            ly + 10.0,
            escape(&chart.legend),
            format_number(max)
        );
    } else {
        let (mut x, mut y) = (margin, ly);
        for (color, label) in &chart.legend_items {
            let w = 22.0 + text_width(label, 11.0);
            if x + w > width - margin / 2.0 && x > margin {
                x = margin;
                y += 16.0;
            }
            let _ = write!(
                s,
                r##"<rect x="{x}" y="{y}" width="12" height="12" fill="{}" stroke="#999" stroke-width="0.5"/><text x="{}" y="{}" font-size="11">{}</text>"##,
                escape(color),
                x + 15.0,
                y + 10.0,
                escape(label)
            );
            x += w;
        }
        let _ = write!(
            s,
            r#"<text x="{margin}" y="{}" font-size="11">{}</text>"#,
            y + 28.0,
            escape(&chart.legend)
        );
    }
    for (i, c) in unplaced.iter().enumerate() {
        let _ = write!(
            s,
            r#"<text class="unplaced" x="{margin}" y="{}" font-size="11"><title>{}</title>not on the plan: {} — {}</text>"#,
            ly + 62.0 + 18.0 * i as f64,
            escape(&c.title),
            escape(&c.label),
            escape(&c.text)
        );
    }
    s.push_str("</svg>");
    s
}

/// Render a raster `(column, row, value)` (row 0 at the top) as SVG with the
/// sequential colour scale, about 480 px wide.
pub fn raster_svg(title: &str, legend: &str, cells: &[(u32, u32, f64)]) -> String {
    let nx = cells.iter().map(|c| c.0 + 1).max().unwrap_or(1);
    let ny = cells.iter().map(|c| c.1 + 1).max().unwrap_or(1);
    let px = (480.0 / f64::from(nx)).clamp(1.0, 40.0);
    let margin = 40.0;
    let max = cells.iter().map(|c| c.2).fold(0.0f64, f64::max);
    let width = margin * 2.0 + f64::from(nx) * px;
    let height = margin * 2.0 + f64::from(ny) * px + 40.0;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="{}" role="img" aria-label="{}"><rect width="100%" height="100%" fill="white"/><text x="{margin}" y="24" font-size="16" font-weight="600">{}</text>"#,
        escape(FONT_FAMILY),
        escape(title),
        escape(title)
    );
    for &(i, j, v) in cells {
        let _ = write!(
            s,
            r#"<rect x="{:.2}" y="{:.2}" width="{:.2}" height="{:.2}" fill="{}"/>"#,
            margin + f64::from(i) * px,
            margin + f64::from(j) * px,
            px + 0.05,
            px + 0.05,
            sequential_color(if max > 0.0 { v / max } else { 0.0 })
        );
    }
    let ly = margin + f64::from(ny) * px + 14.0;
    for i in 0..5 {
        let _ = write!(
            s,
            r##"<rect x="{}" y="{ly}" width="30" height="12" fill="{}" stroke="#999" stroke-width="0.5"/>"##,
            margin + f64::from(i) * 30.0,
            sequential_color(f64::from(i) / 4.0)
        );
    }
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" font-size="11">{} 0 – {:.3e}</text></svg>"#,
        margin + 160.0,
        ly + 10.0,
        escape(legend),
        max
    );
    s
}

/// Approximate rendered width of text in pixels: full-width (CJK) characters
/// take one em, others about 0.6 em. Charts measure text themselves so that
/// they render the same in a browser, a worker and a file.
pub fn text_width(text: &str, font_size: f64) -> f64 {
    text.chars()
        .map(|c| {
            let wide = matches!(c as u32, 0x1100..=0x115F | 0x2E80..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF | 0xFE30..=0xFE4F | 0xFF00..=0xFF60 | 0xFFE0..=0xFFE6);
            if wide { font_size } else { 0.6 * font_size }
        })
        .sum()
}

fn format_number(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_data_and_draws_every_cell() {
        let cells = (0..4)
            .map(|i| GridCell {
                row: Some(i / 2),
                col: Some(i % 2),
                label: format!("<b>{i}</b>"),
                value: f64::from(i),
                text: i.to_string(),
                title: "t".into(),
                fill: None,
            })
            .collect();
        let svg = grid_svg(&GridChart {
            title: "仓库 & <x>".into(),
            legend: "events".into(),
            legend_items: vec![("#b2182b".into(), "<hot>".into())],
            cells,
        });
        assert!(svg.contains("&lt;hot&gt;"));
        assert_eq!(text_width("重大 red", 10.0), 20.0 + 4.0 * 6.0);
        assert_eq!(svg.matches("class=\"cell\"").count(), 4);
        assert!(svg.contains("仓库 &amp; &lt;x&gt;"));
        assert!(!svg.contains("<b>"));
        assert_eq!(sequential_color(0.0), "#ffffe5");
        assert_eq!(sequential_color(1.0), "#993404");
    }
}
