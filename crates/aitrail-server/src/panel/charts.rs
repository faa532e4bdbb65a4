//! Simple inline SVG charts: horizontal bars, one row per group, one bar per series, with
//! each value written beside its bar so the chart reads without colour. No JavaScript.

use maud::{html, Markup};

/// Colours of the series, in order (dark enough to read on white).
const COLOURS: &[&str] = &["#0a58ca", "#bc4c00", "#1a7f37", "#8250df"];

const WIDTH: f64 = 560.0;
const LABEL: f64 = 190.0;
const VALUE: f64 = 90.0;
const BAR: f64 = 14.0;
const GAP: f64 = 10.0;

/// One group's row: its label and one `(value, shown text)` per series.
pub struct Row {
    pub label: String,
    pub values: Vec<(f64, String)>,
}

/// A horizontal bar chart in a `<figure>`; bars are scaled to the largest value.
pub fn bar_chart(id: &str, caption: &str, series: &[&str], rows: &[Row]) -> Markup {
    let max = rows
        .iter()
        .flat_map(|r| r.values.iter().map(|(v, _)| *v))
        .fold(0.0_f64, f64::max);
    let span = WIDTH - LABEL - VALUE;
    let per_row = BAR * series.len().max(1) as f64 + GAP;
    let legend = if series.len() > 1 { 22.0 } else { 0.0 };
    let height = legend + per_row * rows.len() as f64 + GAP;
    let title_id = format!("{id}-title");
    html! {
        figure #(id) {
            figcaption #(title_id) { (caption) }
            svg xmlns="http://www.w3.org/2000/svg" width="100%" style={ "max-width:" (WIDTH * 1.25) "px" } viewBox={ "0 0 " (WIDTH) " " (height) }
                role="img" aria-labelledby=(title_id) preserveAspectRatio="xMinYMin meet" {
                @if series.len() > 1 {
                    @for (i, name) in series.iter().enumerate() {
                        rect x=(LABEL + i as f64 * 110.0) y="4" width="12" height="12" fill=(COLOURS[i % COLOURS.len()]) {}
                        text x=(LABEL + 18.0 + i as f64 * 110.0) y="14" { (name) }
                    }
                }
                @for (r, row) in rows.iter().enumerate() {
                    @let top = legend + GAP / 2.0 + r as f64 * per_row;
                    text x="0" y=(top + per_row / 2.0 - 1.0) dominant-baseline="middle" { (row.label) }
                    @for (s, (value, shown)) in row.values.iter().enumerate() {
                        @let y = top + s as f64 * BAR;
                        @let w = if max > 0.0 { (value / max * span).max(1.0) } else { 1.0 };
                        rect class="bar" x=(LABEL) y=(y) width=(format!("{w:.1}")) height=(BAR - 2.0)
                            fill=(COLOURS[s % COLOURS.len()]) {
                            title { (row.label) ", " (series.get(s).copied().unwrap_or("")) ": " (shown) }
                        }
                        text x=(format!("{:.1}", LABEL + w + 6.0)) y=(y + BAR / 2.0) dominant-baseline="middle" { (shown) }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_value_and_escape_labels() {
        let rows = vec![
            Row {
                label: "a <b>".into(),
                values: vec![(0.5, "50%".into())],
            },
            Row {
                label: "c".into(),
                values: vec![(0.25, "25%".into())],
            },
        ];
        let svg = bar_chart("x", "Override rate", &["rate"], &rows).into_string();
        let span = WIDTH - LABEL - VALUE;
        assert!(svg.contains(&format!("width=\"{span:.1}\"")), "{svg}");
        assert!(
            svg.contains(&format!("width=\"{:.1}\"", span / 2.0)),
            "{svg}"
        );
        assert!(svg.contains("a &lt;b&gt;"));
        assert!(!svg.contains("<b>"));
        assert!(
            svg.contains("</rect>"),
            "rects are closed inside HTML: {svg}"
        );
    }
}
