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

/// Whether dark text (#111) contrasts more with a `#rrggbb` background
/// than white does, by the WCAG contrast ratio.
pub fn dark_text_on(fill: &str) -> bool {
    let hex = fill.trim_start_matches('#');
    if hex.len() != 6 {
        return true;
    }
    let c = |i: usize| f64::from(u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(255));
    let bg = relative_luminance(c(0), c(2), c(4));
    let dark = relative_luminance(17.0, 17.0, 17.0);
    (bg + 0.05) / (dark + 0.05) >= 1.05 / (bg + 0.05)
}

/// The WCAG relative luminance of an sRGB colour (channels 0–255).
fn relative_luminance(r: f64, g: f64, b: f64) -> f64 {
    let lin = |v: f64| {
        let v = v / 255.0;
        if v <= 0.04045 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)
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
    let ly = margin + f64::from(rows) * size + 16.0;
    // The legend first, laid out within the width: its height sets the
    // chart's, so that nothing is cut off.
    let mut legend = String::new();
    let mut y = ly;
    if chart.legend_items.is_empty() {
        // A five-step ramp from 0 to the maximum.
        for i in 0..5 {
            let t = f64::from(i) / 4.0;
            let _ = write!(
                legend,
                r##"<rect x="{}" y="{ly}" width="30" height="12" fill="{}" stroke="#999" stroke-width="0.5"/>"##,
                margin + f64::from(i) * 30.0,
                sequential_color(t)
            );
        }
        let text = format!("{} 0 – {}", chart.legend, format_number(max));
        for line in wrap(&text, 11.0, width - margin - 160.0 - 8.0) {
            let _ = write!(
                legend,
                r#"<text x="{}" y="{}" font-size="11">{}</text>"#,
                margin + 160.0,
                y + 10.0,
                escape(&line)
            );
            y += 15.0;
        }
    } else {
        let mut x = margin;
        for (color, label) in &chart.legend_items {
            let w = 22.0 + text_width(label, 11.0);
            if x + w > width - margin / 2.0 && x > margin {
                x = margin;
                y += 16.0;
            }
            let _ = write!(
                legend,
                r##"<rect x="{x}" y="{y}" width="12" height="12" fill="{}" stroke="#999" stroke-width="0.5"/><text x="{}" y="{}" font-size="11">{}</text>"##,
                escape(color),
                x + 15.0,
                y + 10.0,
                escape(label)
            );
            x += w;
        }
        y += 28.0;
        for line in wrap(&chart.legend, 11.0, width - margin - 8.0) {
            let _ = write!(
                legend,
                r#"<text x="{margin}" y="{y}" font-size="11">{}</text>"#,
                escape(&line)
            );
            y += 15.0;
        }
    }
    for (i, c) in unplaced.iter().enumerate() {
        let _ = write!(
            legend,
            r#"<text class="unplaced" x="{margin}" y="{}" font-size="11"><title>{}</title>not on the plan: {} — {}</text>"#,
            y + 18.0 + 18.0 * i as f64,
            escape(&c.title),
            escape(&c.label),
            escape(&c.text)
        );
    }
    let height = (y + 18.0 * unplaced.len() as f64 + margin)
        .max(margin * 2.0 + f64::from(rows) * size + 76.0 + 18.0 * unplaced.len() as f64);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="{}" role="img" aria-label="{}">"#,
        escape(FONT_FAMILY),
        escape(&chart.title)
    );
    let _ = write!(
        s,
        r#"<rect width="100%" height="100%" fill="white"/><text x="{margin}" y="24" font-size="{}" font-weight="600">{}</text>"#,
        fit(&chart.title, 16.0, width - margin - 8.0),
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
        // Text shrinks to stay inside its cell.
        let _ = write!(
            s,
            r##"<g class="cell" data-cell="{label}" data-value="{value}"><title>{title}</title><rect x="{x}" y="{y}" width="{size}" height="{size}" fill="{fill}" stroke="#555" stroke-width="1"/><text x="{tx}" y="{ty}" font-size="{lsize}" fill="{ink}" text-anchor="middle">{label}</text><text x="{tx}" y="{vy}" font-size="{vsize}" font-weight="600" fill="{ink}" text-anchor="middle">{text}</text></g>"##,
            label = escape(&c.label),
            value = c.value,
            title = escape(&c.title),
            tx = x + size / 2.0,
            ty = y + 18.0,
            vy = y + size / 2.0 + 12.0,
            lsize = fit(&c.label, 11.0, size - 8.0),
            vsize = fit(&c.text, 16.0, size - 8.0),
            text = escape(&c.text),
        );
    }
    s.push_str(&legend);
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

/// The font size at which `text` fits `width` (at most `size`, at least 6).
fn fit(text: &str, size: f64, width: f64) -> f64 {
    let w = text_width(text, size);
    if w <= width {
        size
    } else {
        (size * width / w).max(6.0).floor()
    }
}

/// `text` broken at spaces into lines no wider than `width` (a word
/// longer than the width gets a line of its own).
fn wrap(text: &str, size: f64, width: f64) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let candidate = if line.is_empty() {
            word.to_string()
        } else {
            format!("{line} {word}")
        };
        if text_width(&candidate, size) > width && !line.is_empty() {
            lines.push(std::mem::take(&mut line));
            line = word.to_string();
        } else {
            line = candidate;
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
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

/// A labelled matrix (rows × columns) coloured by value: the hour × weekday
/// and zone × hour heat maps.
#[derive(Debug, Clone, PartialEq)]
pub struct MatrixChart {
    /// Title above the matrix.
    pub title: String,
    /// Legend caption of the colour scale.
    pub legend: String,
    /// Row labels, top to bottom.
    pub rows: Vec<String>,
    /// Column labels, left to right.
    pub cols: Vec<String>,
    /// Values by row then column (`None` = no value, drawn grey).
    pub values: Vec<Vec<Option<f64>>>,
    /// Cells to outline (row, column), e.g. significant peaks.
    pub outlined: Vec<(usize, usize)>,
    /// Caption of the outline in the legend.
    pub outline_label: String,
}

/// Render a matrix chart as SVG; each cell carries its value as `<title>`.
pub fn matrix_svg(m: &MatrixChart) -> String {
    let cw = if m.cols.len() > 12 { 28.0 } else { 44.0 };
    let ch = 24.0;
    let label_w = m
        .rows
        .iter()
        .map(|r| text_width(r, 12.0))
        .fold(40.0f64, f64::max)
        + 12.0;
    let top = 56.0;
    let width = label_w + cw * m.cols.len() as f64 + 24.0;
    let height = top + ch * m.rows.len() as f64 + 64.0;
    let max = m
        .values
        .iter()
        .flatten()
        .flatten()
        .copied()
        .fold(0.0f64, f64::max);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="{}" role="img" aria-label="{}"><rect width="100%" height="100%" fill="white"/><text x="8" y="22" font-size="16" font-weight="600">{}</text>"#,
        escape(FONT_FAMILY),
        escape(&m.title),
        escape(&m.title)
    );
    for (j, c) in m.cols.iter().enumerate() {
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{}" font-size="11" text-anchor="middle">{}</text>"#,
            label_w + cw * (j as f64 + 0.5),
            top - 6.0,
            escape(c)
        );
    }
    for (i, r) in m.rows.iter().enumerate() {
        let y = top + ch * i as f64;
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="end">{}</text>"#,
            label_w - 6.0,
            y + ch * 0.66,
            escape(r)
        );
        for (j, c) in m.cols.iter().enumerate() {
            let v = m
                .values
                .get(i)
                .and_then(|row| row.get(j))
                .copied()
                .flatten();
            let fill = v.map_or_else(
                || "#dddddd".to_string(),
                |v| sequential_color(if max > 0.0 { v / max } else { 0.0 }),
            );
            let x = label_w + cw * j as f64;
            let text = v.map_or_else(|| "–".to_string(), short_number);
            let _ = write!(
                s,
                r##"<g><title>{} · {}: {}</title><rect x="{x:.1}" y="{y:.1}" width="{cw}" height="{ch}" fill="{fill}" stroke="#ffffff" stroke-width="1"/>"##,
                escape(r),
                escape(c),
                escape(&text)
            );
            if cw >= 28.0 {
                let _ = write!(
                    s,
                    r#"<text x="{:.1}" y="{:.1}" font-size="9" text-anchor="middle" fill="{}">{}</text>"#,
                    x + cw / 2.0,
                    y + ch * 0.64,
                    if dark_text_on(&fill) { "#222" } else { "#fff" },
                    escape(&text)
                );
            }
            s.push_str("</g>");
        }
    }
    for &(i, j) in &m.outlined {
        let _ = write!(
            s,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="none" stroke="#08306b" stroke-width="2.5"/>"##,
            label_w + cw * j as f64 + 1.2,
            top + ch * i as f64 + 1.2,
            cw - 2.4,
            ch - 2.4
        );
    }
    let ly = top + ch * m.rows.len() as f64 + 16.0;
    for i in 0..5 {
        let _ = write!(
            s,
            r##"<rect x="{}" y="{ly}" width="30" height="12" fill="{}" stroke="#999" stroke-width="0.5"/>"##,
            label_w + f64::from(i) * 30.0,
            sequential_color(f64::from(i) / 4.0)
        );
    }
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" font-size="11">{} 0 – {}</text>"#,
        label_w + 160.0,
        ly + 10.0,
        escape(&m.legend),
        short_number(max)
    );
    if !m.outlined.is_empty() {
        let _ = write!(
            s,
            r##"<rect x="{}" y="{}" width="30" height="12" fill="none" stroke="#08306b" stroke-width="2.5"/><text x="{}" y="{}" font-size="11">{}</text>"##,
            label_w,
            ly + 22.0,
            label_w + 36.0,
            ly + 32.0,
            escape(&m.outline_label)
        );
    }
    s.push_str("</svg>");
    s
}

/// A number in at most four significant characters (`12`, `3.4`, `1.2k`).
pub fn short_number(v: f64) -> String {
    let a = v.abs();
    if a >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if a >= 1000.0 {
        format!("{:.1}k", v / 1000.0)
    } else if a >= 100.0 || (v.fract() == 0.0) {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// One series of a line chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Stroke colour.
    pub color: String,
    /// Values per x position (`None` = gap).
    pub values: Vec<Option<f64>>,
    /// Draw dashed.
    pub dashed: bool,
}

/// Render a line chart over labelled x positions (e.g. months) as SVG.
pub fn line_svg(title: &str, x_labels: &[String], series: &[Series]) -> String {
    let (left, top, pw, ph) = (56.0, 40.0, 640.0, 260.0);
    let width = left + pw + 24.0;
    let height = top + ph + 56.0 + 16.0 * series.len() as f64;
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().flatten())
        .copied()
        .fold(0.0f64, f64::max)
        .max(1e-9);
    let n = x_labels.len().max(2);
    let x = |i: usize| left + pw * i as f64 / (n - 1) as f64;
    let y = |v: f64| top + ph - ph * v / (max * 1.05);
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="{}" role="img" aria-label="{}"><rect width="100%" height="100%" fill="white"/><text x="8" y="22" font-size="16" font-weight="600">{}</text><line x1="{left}" y1="{}" x2="{}" y2="{}" stroke="#444"/><line x1="{left}" y1="{top}" x2="{left}" y2="{}" stroke="#444"/>"##,
        escape(FONT_FAMILY),
        escape(title),
        escape(title),
        top + ph,
        left + pw,
        top + ph,
        top + ph
    );
    for k in 0..=4 {
        let v = max * 1.05 * f64::from(k) / 4.0;
        let _ = write!(
            s,
            r##"<text x="{}" y="{:.1}" font-size="10" text-anchor="end">{}</text><line x1="{left}" y1="{:.1}" x2="{}" y2="{:.1}" stroke="#eee"/>"##,
            left - 4.0,
            y(v) + 3.0,
            short_number(v),
            y(v),
            left + pw,
            y(v)
        );
    }
    let step = x_labels.len().div_ceil(12).max(1);
    for (i, l) in x_labels.iter().enumerate().step_by(step) {
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{}" font-size="10" text-anchor="middle">{}</text>"#,
            x(i),
            top + ph + 14.0,
            escape(l)
        );
    }
    for (k, se) in series.iter().enumerate() {
        let mut d = String::new();
        let mut pen = false;
        for (i, v) in se.values.iter().enumerate() {
            match v {
                Some(v) => {
                    let _ = write!(
                        d,
                        "{}{:.1},{:.1} ",
                        if pen { "L" } else { "M" },
                        x(i),
                        y(*v)
                    );
                    pen = true;
                }
                None => pen = false,
            }
        }
        let _ = write!(
            s,
            r#"<path d="{}" fill="none" stroke="{}" stroke-width="2"{}><title>{}</title></path>"#,
            d.trim_end(),
            escape(&se.color),
            if se.dashed {
                r#" stroke-dasharray="5 3""#
            } else {
                ""
            },
            escape(&se.label)
        );
        let ly = top + ph + 34.0 + 16.0 * k as f64;
        let _ = write!(
            s,
            r#"<line x1="{left}" y1="{ly}" x2="{}" y2="{ly}" stroke="{}" stroke-width="2"{}/><text x="{}" y="{}" font-size="11">{}</text>"#,
            left + 24.0,
            escape(&se.color),
            if se.dashed {
                r#" stroke-dasharray="5 3""#
            } else {
                ""
            },
            left + 30.0,
            ly + 4.0,
            escape(&se.label)
        );
    }
    s.push_str("</svg>");
    s
}

/// One series of points of a calibration chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Points {
    /// Legend label.
    pub label: String,
    /// Colour of the points and their line.
    pub color: String,
    /// `(x, y)` pairs, joined in order.
    pub points: Vec<(f64, f64)>,
}

/// The words of a calibration chart.
#[derive(Debug, Clone, PartialEq)]
pub struct CalibrationWords {
    /// Title.
    pub title: String,
    /// The x axis (predicted).
    pub x: String,
    /// The y axis (observed).
    pub y: String,
    /// The legend of the diagonal (perfect calibration).
    pub diagonal: String,
}

/// Render a calibration chart: each series' points (mean predicted, mean
/// observed) joined in order, over the diagonal where they would be equal;
/// both axes from 0 to the largest value.
pub fn calibration_svg(words: &CalibrationWords, series: &[Points]) -> String {
    let (left, top, side) = (64.0, 40.0, 360.0);
    let legend_x = left + side + 24.0;
    let width = legend_x + 200.0;
    let height = top + side + 48.0;
    let max = series
        .iter()
        .flat_map(|s| s.points.iter().flat_map(|p| [p.0, p.1]))
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max)
        .max(1e-9)
        * 1.05;
    let x = |v: f64| left + side * v / max;
    let y = |v: f64| top + side - side * v / max;
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="{}" role="img" aria-label="{}"><rect width="100%" height="100%" fill="white"/><text x="8" y="22" font-size="16" font-weight="600">{}</text>"##,
        escape(FONT_FAMILY),
        escape(&words.title),
        escape(&words.title),
    );
    for k in 0..=4 {
        let v = max * f64::from(k) / 4.0;
        let _ = write!(
            s,
            r##"<line x1="{left}" y1="{:.1}" x2="{}" y2="{:.1}" stroke="#eee"/><text x="{}" y="{:.1}" font-size="10" text-anchor="end">{}</text><text x="{:.1}" y="{}" font-size="10" text-anchor="middle">{}</text>"##,
            y(v),
            left + side,
            y(v),
            left - 4.0,
            y(v) + 3.0,
            short_number(v),
            x(v),
            top + side + 14.0,
            short_number(v)
        );
    }
    let _ = write!(
        s,
        r##"<line x1="{left}" y1="{}" x2="{}" y2="{}" stroke="#444"/><line x1="{left}" y1="{top}" x2="{left}" y2="{}" stroke="#444"/><line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#888" stroke-dasharray="4 3"><title>{}</title></line><text x="{:.1}" y="{}" font-size="11" text-anchor="middle">{}</text><text x="14" y="{:.1}" font-size="11" text-anchor="middle" transform="rotate(-90 14 {:.1})">{}</text>"##,
        top + side,
        left + side,
        top + side,
        top + side,
        x(0.0),
        y(0.0),
        x(max),
        y(max),
        escape(&words.diagonal),
        left + side / 2.0,
        top + side + 32.0,
        escape(&words.x),
        top + side / 2.0,
        top + side / 2.0,
        escape(&words.y),
    );
    for (k, se) in series.iter().enumerate() {
        let pts: Vec<&(f64, f64)> = se
            .points
            .iter()
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .collect();
        let d: Vec<String> = pts
            .iter()
            .enumerate()
            .map(|(i, p)| {
                format!(
                    "{}{:.1},{:.1}",
                    if i == 0 { "M" } else { "L" },
                    x(p.0),
                    y(p.1)
                )
            })
            .collect();
        let color = escape(&se.color);
        let _ = write!(
            s,
            r#"<path d="{}" fill="none" stroke="{color}" stroke-width="1.5"/>"#,
            d.join(" ")
        );
        for p in pts {
            let _ = write!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{color}"><title>{}: {} → {}</title></circle>"#,
                x(p.0),
                y(p.1),
                escape(&se.label),
                short_number(p.0),
                short_number(p.1)
            );
        }
        let ly = top + 10.0 + 18.0 * k as f64;
        let _ = write!(
            s,
            r#"<circle cx="{}" cy="{ly}" r="4" fill="{color}"/><text x="{}" y="{}" font-size="11">{}</text>"#,
            legend_x + 6.0,
            legend_x + 16.0,
            ly + 4.0,
            escape(&se.label)
        );
    }
    let ly = top + 10.0 + 18.0 * series.len() as f64;
    let _ = write!(
        s,
        r##"<line x1="{legend_x}" y1="{ly}" x2="{}" y2="{ly}" stroke="#888" stroke-dasharray="4 3"/><text x="{}" y="{}" font-size="11">{}</text>"##,
        legend_x + 12.0,
        legend_x + 16.0,
        ly + 4.0,
        escape(&words.diagonal)
    );
    s.push_str("</svg>");
    s
}

/// Render a Pareto chart: bars in the given order with the cumulative share
/// as a line on a 0–100 % axis and the 80 % line; `cumulative` is the word
/// for the share in the hover text.
pub fn pareto_svg(title: &str, items: &[(String, f64)], cumulative: &str) -> String {
    let (left, top, ph) = (56.0, 40.0, 240.0);
    let bw = 36.0;
    let pw = bw * items.len().max(1) as f64;
    let width = left + pw + 64.0;
    let height = top + ph + 110.0;
    let total: f64 = items.iter().map(|i| i.1).sum();
    let max = items.iter().map(|i| i.1).fold(0.0f64, f64::max).max(1e-9);
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="{}" role="img" aria-label="{}"><rect width="100%" height="100%" fill="white"/><text x="8" y="22" font-size="16" font-weight="600">{}</text>"##,
        escape(FONT_FAMILY),
        escape(title),
        escape(title)
    );
    let y80 = top + ph * 0.2;
    let _ = write!(
        s,
        r##"<line x1="{left}" y1="{y80}" x2="{}" y2="{y80}" stroke="#999" stroke-dasharray="4 3"/><text x="{}" y="{}" font-size="10">80 %</text>"##,
        left + pw,
        left + pw + 4.0,
        y80 + 3.0
    );
    let mut cum = 0.0;
    let mut d = String::new();
    for (i, (label, v)) in items.iter().enumerate() {
        let h = ph * v / max;
        let x = left + bw * i as f64;
        cum += v;
        let share = if total > 0.0 { cum / total } else { 0.0 };
        let _ = write!(
            s,
            r##"<g><title>{}: {} ({:.1} % {})</title><rect x="{:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="#d95f0e"/></g><text transform="translate({:.1},{}) rotate(45)" font-size="10">{}</text>"##,
            escape(label),
            short_number(*v),
            share * 100.0,
            escape(cumulative),
            x + 3.0,
            top + ph - h,
            bw - 6.0,
            x + bw / 2.0,
            top + ph + 10.0,
            escape(label)
        );
        let _ = write!(
            d,
            "{}{:.1},{:.1} ",
            if i == 0 { "M" } else { "L" },
            x + bw / 2.0,
            top + ph - ph * share
        );
    }
    let _ = write!(
        s,
        r##"<path d="{}" fill="none" stroke="#08306b" stroke-width="2"/><line x1="{left}" y1="{}" x2="{}" y2="{}" stroke="#444"/></svg>"##,
        d.trim_end(),
        top + ph,
        left + pw,
        top + ph
    );
    s
}

/// One bullet of a bullet chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Bullet {
    /// Row label.
    pub label: String,
    /// Actual value (the bar).
    pub actual: Option<f64>,
    /// Target (the tick).
    pub target: Option<f64>,
    /// Projection to the period end (the hollow marker).
    pub projection: Option<f64>,
    /// Status text drawn beside the bar.
    pub status: String,
    /// Bar colour.
    pub color: String,
}

/// The words of a bullet chart: the names of its three values in the hover
/// text and the key under the rows.
#[derive(Debug, Clone, PartialEq)]
pub struct BulletWords {
    /// The actual value's name.
    pub actual: String,
    /// The target's name.
    pub target: String,
    /// The projection's name.
    pub projection: String,
    /// The key under the rows.
    pub key: String,
}

impl Default for BulletWords {
    fn default() -> Self {
        BulletWords {
            actual: "actual".into(),
            target: "target".into(),
            projection: "projection".into(),
            key: "bar = actual to date · | = target · ○ = projection to the period end".into(),
        }
    }
}

/// Render bullet charts, one row each, every row on its own scale (0 to the
/// largest of actual, target and projection).
pub fn bullets_svg(title: &str, rows: &[Bullet], words: &BulletWords) -> String {
    let label_w = rows
        .iter()
        .map(|r| text_width(&r.label, 12.0))
        .fold(120.0f64, f64::max)
        + 12.0;
    let (bar_w, row_h, top) = (360.0, 30.0, 40.0);
    let width = label_w + bar_w + 150.0;
    let height = top + row_h * rows.len() as f64 + 36.0;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="{}" role="img" aria-label="{}"><rect width="100%" height="100%" fill="white"/><text x="8" y="22" font-size="16" font-weight="600">{}</text>"#,
        escape(FONT_FAMILY),
        escape(title),
        escape(title)
    );
    for (i, r) in rows.iter().enumerate() {
        let y = top + row_h * i as f64;
        let max = [r.actual, r.target, r.projection]
            .iter()
            .flatten()
            .copied()
            .fold(0.0f64, f64::max)
            .max(1e-9)
            * 1.1;
        let x = |v: f64| label_w + bar_w * (v / max).clamp(0.0, 1.0);
        let _ = write!(
            s,
            r##"<g><title>{}: {} {} · {} {} · {} {} · {}</title><text x="{:.1}" y="{:.1}" font-size="12" text-anchor="end">{}</text><rect x="{label_w}" y="{:.1}" width="{bar_w}" height="16" fill="#eeeeee"/>"##,
            escape(&r.label),
            escape(&words.actual),
            r.actual.map_or("–".into(), short_number),
            escape(&words.target),
            r.target.map_or("–".into(), short_number),
            escape(&words.projection),
            r.projection.map_or("–".into(), short_number),
            escape(&r.status),
            label_w - 6.0,
            y + 13.0,
            escape(&r.label),
            y + 2.0
        );
        if let Some(a) = r.actual {
            let _ = write!(
                s,
                r##"<rect x="{label_w}" y="{:.1}" width="{:.1}" height="8" fill="{}"/>"##,
                y + 6.0,
                x(a) - label_w,
                escape(&r.color)
            );
        }
        if let Some(p) = r.projection {
            let _ = write!(
                s,
                r##"<circle cx="{:.1}" cy="{:.1}" r="4" fill="none" stroke="#333" stroke-width="1.5"/>"##,
                x(p),
                y + 10.0
            );
        }
        if let Some(t) = r.target {
            let _ = write!(
                s,
                r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#000" stroke-width="2.5"/>"##,
                x(t),
                y,
                x(t),
                y + 20.0
            );
        }
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" font-size="12">{} {}</text></g>"#,
            label_w + bar_w + 8.0,
            y + 13.0,
            r.actual.map_or("–".into(), short_number),
            escape(&r.status)
        );
    }
    let ly = top + row_h * rows.len() as f64 + 16.0;
    let _ = write!(
        s,
        r##"<text x="{label_w}" y="{ly}" font-size="11">{}</text></svg>"##,
        escape(&words.key)
    );
    s
}

/// Render a labelled vertical bar chart with the value above each bar.
pub fn bars_svg(title: &str, items: &[(String, f64)]) -> String {
    let (left, top, ph, bw) = (40.0, 40.0, 200.0, 64.0);
    let width = left * 2.0 + bw * items.len().max(1) as f64;
    let height = top + ph + 50.0;
    let max = items.iter().map(|i| i.1).fold(0.0f64, f64::max).max(1e-9);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="{}" role="img" aria-label="{}"><rect width="100%" height="100%" fill="white"/><text x="8" y="22" font-size="16" font-weight="600">{}</text>"#,
        escape(FONT_FAMILY),
        escape(title),
        escape(title)
    );
    for (i, (label, v)) in items.iter().enumerate() {
        let h = ph * v / max;
        let x = left + bw * i as f64;
        let _ = write!(
            s,
            r##"<g><title>{}: {}</title><rect x="{:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="#d95f0e"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle">{}</text><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle">{}</text></g>"##,
            escape(label),
            short_number(*v),
            x + 6.0,
            top + ph - h,
            bw - 12.0,
            x + bw / 2.0,
            top + ph - h - 4.0,
            short_number(*v),
            x + bw / 2.0,
            top + ph + 16.0,
            escape(label)
        );
    }
    s.push_str("</svg>");
    s
}

/// Render a strip of labelled boxes (e.g. quarterly milestones), each
/// `(label, text, colour)`; the text is drawn in the box so the colour is
/// never the only carrier of meaning.
pub fn strip_svg(title: &str, items: &[(String, String, String)]) -> String {
    let (bw, bh, top) = (150.0, 44.0, 36.0);
    let width = 16.0 + bw * items.len().max(1) as f64;
    let height = top + bh + 12.0;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="{}" role="img" aria-label="{}"><rect width="100%" height="100%" fill="white"/><text x="8" y="22" font-size="15" font-weight="600">{}</text>"#,
        escape(FONT_FAMILY),
        escape(title),
        escape(title)
    );
    for (i, (label, text, color)) in items.iter().enumerate() {
        let x = 8.0 + bw * i as f64;
        let fg = if dark_text_on(color) { "#111" } else { "#fff" };
        let _ = write!(
            s,
            r#"<g><title>{}: {}</title><rect x="{x}" y="{top}" width="{}" height="{bh}" fill="{}" stroke="white" stroke-width="2"/><text x="{}" y="{}" font-size="12" font-weight="600" fill="{fg}">{}</text><text x="{}" y="{}" font-size="11" fill="{fg}">{}</text></g>"#,
            escape(label),
            escape(text),
            bw - 4.0,
            escape(color),
            x + 6.0,
            top + 17.0,
            escape(label),
            x + 6.0,
            top + 34.0,
            escape(text)
        );
    }
    s.push_str("</svg>");
    s
}

/// Stack SVG documents vertically into one document.
pub fn stack_svg(parts: &[String]) -> String {
    let size = |svg: &str, attr: &str| -> f64 {
        let key = format!(" {attr}=\"");
        svg.find(&key)
            .and_then(|i| {
                let rest = &svg[i + key.len()..];
                rest.find('"').and_then(|j| rest[..j].parse().ok())
            })
            .unwrap_or(0.0)
    };
    let width = parts
        .iter()
        .map(|p| size(p, "width"))
        .fold(0.0f64, f64::max);
    let height: f64 = parts.iter().map(|p| size(p, "height")).sum();
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}"><rect width="100%" height="100%" fill="white"/>"#
    );
    let mut y = 0.0;
    for p in parts {
        // Nested <svg> elements keep each chart's own coordinates.
        let inner = p.replacen("<svg ", &format!("<svg y=\"{y}\" "), 1);
        s.push_str(&inner);
        y += size(p, "height");
    }
    s.push_str("</svg>");
    s
}

/// Why a chart could not be rasterised.
#[cfg(feature = "png")]
#[derive(Debug, Clone, PartialEq)]
pub struct PngError(pub String);

#[cfg(feature = "png")]
impl std::fmt::Display for PngError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot render the chart as PNG: {}", self.0)
    }
}

#[cfg(feature = "png")]
impl std::error::Error for PngError {}

/// The system's fonts, loaded once (CJK fonts included where installed).
#[cfg(feature = "png")]
fn fonts() -> std::sync::Arc<resvg::usvg::fontdb::Database> {
    static DB: std::sync::OnceLock<std::sync::Arc<resvg::usvg::fontdb::Database>> =
        std::sync::OnceLock::new();
    DB.get_or_init(|| {
        let mut db = resvg::usvg::fontdb::Database::new();
        db.load_system_fonts();
        db.set_sans_serif_family("DejaVu Sans");
        std::sync::Arc::new(db)
    })
    .clone()
}

/// Rasterise an SVG chart to PNG at `scale` (1.0 = one pixel per SVG unit).
#[cfg(feature = "png")]
pub fn svg_to_png(svg: &str, scale: f32) -> Result<Vec<u8>, PngError> {
    use resvg::{tiny_skia, usvg};
    if !(scale.is_finite() && scale > 0.0 && scale <= 8.0) {
        return Err(PngError(format!("scale must be in (0, 8], got {scale}")));
    }
    let opt = usvg::Options {
        fontdb: fonts(),
        ..Default::default()
    };
    let tree = usvg::Tree::from_str(svg, &opt).map_err(|e| PngError(e.to_string()))?;
    let size = tree.size();
    let (w, h) = (
        ((size.width() * scale).ceil() as u32).max(1),
        ((size.height() * scale).ceil() as u32).max(1),
    );
    let mut pixmap = tiny_skia::Pixmap::new(w, h)
        .ok_or_else(|| PngError(format!("cannot allocate a {w} × {h} image")))?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(scale, scale),
        &mut pixmap.as_mut(),
    );
    pixmap.encode_png().map_err(|e| PngError(e.to_string()))
}
