//! The console's charts, drawn on the server as SVG (plotters): a page shows them with no
//! script, and a screenshot or a printout has them too.

use plotters::prelude::*;

/// One line of a daily chart.
pub struct Series<'a> {
    pub name: &'a str,
    pub values: Vec<f64>,
    pub color: RGBColor,
}

pub const BLUE_LINE: RGBColor = RGBColor(48, 86, 211);
pub const GREEN_LINE: RGBColor = RGBColor(26, 127, 55);
pub const ORANGE_LINE: RGBColor = RGBColor(220, 120, 20);
pub const GREY_LINE: RGBColor = RGBColor(140, 148, 160);

/// Lines over days (`dates` label the x axis); `y_label` formats the y axis's values.
pub fn daily(dates: &[String], series: &[Series<'_>], y_label: &dyn Fn(f64) -> String) -> String {
    let mut svg = String::new();
    if let Err(err) = draw_daily(&mut svg, dates, series, y_label) {
        tracing::warn!(error = %err, "console chart failed");
        return String::new();
    }
    svg
}

fn draw_daily(svg: &mut String, dates: &[String], series: &[Series<'_>], y_label: &dyn Fn(f64) -> String) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::with_string(svg, (640, 240)).into_drawing_area();
    root.fill(&WHITE)?;
    let top = series.iter().flat_map(|s| s.values.iter().copied()).fold(0.0_f64, f64::max);
    let top = if top > 0.0 { top * 1.1 } else { 1.0 };
    let days = dates.len().max(2);
    let mut chart = ChartBuilder::on(&root)
        .margin(8)
        .x_label_area_size(24)
        .y_label_area_size(72)
        .build_cartesian_2d(0..days - 1, 0.0..top)?;
    let label = |index: &usize| dates.get(*index).map(|date| date.get(5..).unwrap_or(date).to_owned()).unwrap_or_default();
    chart
        .configure_mesh()
        .x_labels(8)
        .y_labels(5)
        .x_label_formatter(&label)
        .y_label_formatter(&|value| y_label(*value))
        .light_line_style(RGBColor(240, 242, 245))
        .label_style(("sans-serif", 11))
        .draw()?;
    for line in series {
        let color = line.color;
        chart
            .draw_series(LineSeries::new(line.values.iter().enumerate().map(|(i, v)| (i, *v)), color.stroke_width(2)))?
            .label(line.name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], color.stroke_width(2)));
    }
    if series.len() > 1 {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font(("sans-serif", 11))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(228, 231, 236))
            .draw()?;
    }
    root.present()?;
    Ok(())
}

/// A point of a time line: when, a short label, and whether it is the one that counts.
pub struct Mark {
    pub ts: i64,
    pub label: String,
    pub highlighted: bool,
}

/// Marks on a time line ending at `end` (the conversion), newest on the right.
pub fn timeline(marks: &[Mark], end: i64) -> String {
    let mut svg = String::new();
    if let Err(err) = draw_timeline(&mut svg, marks, end) {
        tracing::warn!(error = %err, "console timeline failed");
        return String::new();
    }
    svg
}

fn draw_timeline(svg: &mut String, marks: &[Mark], end: i64) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::with_string(svg, (900, 150)).into_drawing_area();
    root.fill(&WHITE)?;
    let start = marks.iter().map(|mark| mark.ts).min().unwrap_or(end - 3_600_000).min(end - 60_000);
    let span = (end - start).max(1) as f64;
    let x = |ts: i64| 30.0 + (ts - start) as f64 / span * 820.0;
    let axis_y = 90;
    root.draw(&PathElement::new(vec![(20, axis_y), (880, axis_y)], GREY_LINE.stroke_width(2)))?;
    for (i, mark) in marks.iter().enumerate() {
        let at = x(mark.ts) as i32;
        let color = if mark.highlighted { GREEN_LINE } else { GREY_LINE };
        root.draw(&Circle::new((at, axis_y), if mark.highlighted { 7 } else { 5 }, color.filled()))?;
        // Labels alternate above the line so that neighbours do not overlap.
        let y = if i % 2 == 0 { axis_y - 28 } else { axis_y - 50 };
        root.draw(&Text::new(mark.label.clone(), (at - 20, y), ("sans-serif", 11).into_font().color(&color)))?;
    }
    let at = x(end) as i32;
    root.draw(&Rectangle::new([(at - 6, axis_y - 6), (at + 6, axis_y + 6)], BLUE_LINE.filled()))?;
    root.draw(&Text::new("conversion", (at - 60, axis_y + 16), ("sans-serif", 11).into_font().color(&BLUE_LINE)))?;
    let first = chrono::DateTime::from_timestamp_millis(start).map(|t| t.format("%Y-%m-%d %H:%M").to_string()).unwrap_or_default();
    root.draw(&Text::new(first, (20, axis_y + 34), ("sans-serif", 11).into_font().color(&GREY_LINE)))?;
    root.present()?;
    Ok(())
}

/// A difference with its interval on an axis through zero: the bar spans the interval,
/// the dot is the difference (values are rates: drawn as percentages). Nothing to draw
/// when any of the three is missing.
pub fn interval(diff: Option<f64>, low: Option<f64>, high: Option<f64>) -> String {
    let (Some(diff), Some(low), Some(high)) = (diff, low, high) else {
        return String::new();
    };
    let (width, height, pad) = (480.0, 56.0, 24.0);
    let reach = low.abs().max(high.abs()).max(1e-9) * 1.2;
    let x = |value: f64| pad + (value + reach) / (2.0 * reach) * (width - 2.0 * pad);
    let mid = height / 2.0;
    let RGBColor(r, g, b) = if low > 0.0 { GREEN_LINE } else if high < 0.0 { ORANGE_LINE } else { GREY_LINE };
    let bar = format!("#{r:02x}{g:02x}{b:02x}");
    format!(
        "<svg viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"difference {d:.2}% (95% interval {l:.2}% to {h:.2}%)\">\
         <line x1=\"{zero:.1}\" y1=\"4\" x2=\"{zero:.1}\" y2=\"{bottom:.1}\" stroke=\"#999\" stroke-dasharray=\"3 3\"/>\
         <text x=\"{zero:.1}\" y=\"{text_y:.1}\" font-size=\"10\" text-anchor=\"middle\" fill=\"#666\">0</text>\
         <line x1=\"{x_low:.1}\" y1=\"{mid:.1}\" x2=\"{x_high:.1}\" y2=\"{mid:.1}\" stroke=\"{bar}\" stroke-width=\"6\" stroke-linecap=\"round\"/>\
         <circle cx=\"{x_diff:.1}\" cy=\"{mid:.1}\" r=\"6\" fill=\"{bar}\" stroke=\"#fff\" stroke-width=\"2\"/>\
         <text x=\"{x_low:.1}\" y=\"{label_y:.1}\" font-size=\"10\" text-anchor=\"middle\">{l:.2}%</text>\
         <text x=\"{x_high:.1}\" y=\"{label_y:.1}\" font-size=\"10\" text-anchor=\"middle\">{h:.2}%</text></svg>",
        zero = x(0.0),
        bottom = height - 14.0,
        text_y = height - 2.0,
        x_low = x(low),
        x_high = x(high),
        x_diff = x(diff),
        label_y = mid - 10.0,
        d = diff * 100.0,
        l = low * 100.0,
        h = high * 100.0,
    )
}

/// Each subject's values side by side as horizontal bars, one colour per series (the
/// legend on top), all on one scale: which campaign each model credits, at a glance.
pub fn grouped_bars(rows: &[(String, Vec<f64>)], series: &[String]) -> String {
    const COLORS: [&str; 5] = ["#2c5fd9", "#dc7814", "#1a7f37", "#8250df", "#8c94a0"];
    let (label_w, bar_h, gap, width) = (180.0, 9.0, 10.0, 900.0);
    let max = rows.iter().flat_map(|(_, values)| values.iter().copied()).fold(0.0f64, f64::max).max(1e-9);
    let group_h = bar_h * series.len() as f64 + gap;
    let height = 30.0 + group_h * rows.len() as f64;
    let mut svg = format!("<svg viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"conversions under each model, per campaign\">");
    for (i, name) in series.iter().enumerate() {
        let x = label_w + i as f64 * 130.0;
        svg.push_str(&format!(
            "<rect x=\"{x}\" y=\"6\" width=\"12\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"15\" font-size=\"11\">{}</text>",
            COLORS[i % COLORS.len()],
            x + 16.0,
            escape(name)
        ));
    }
    for (r, (label, values)) in rows.iter().enumerate() {
        let top = 30.0 + r as f64 * group_h;
        svg.push_str(&format!(
            "<text x=\"{}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{}</text>",
            label_w - 8.0,
            top + group_h / 2.0,
            escape(label)
        ));
        for (i, value) in values.iter().enumerate() {
            let w = (value / max * (width - label_w - 60.0)).max(0.0);
            let y = top + i as f64 * bar_h;
            svg.push_str(&format!(
                "<rect x=\"{label_w}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"{}\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"9\">{value:.2}</text>",
                bar_h - 1.0,
                COLORS[i % COLORS.len()],
                label_w + w + 4.0,
                y + bar_h - 2.0
            ));
        }
    }
    svg.push_str("</svg>");
    svg
}

/// Text for SVG: the five characters XML escapes.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_svg_with_their_labels() {
        let dates: Vec<String> = (1..=3).map(|d| format!("2026-01-0{d}")).collect();
        let series = [Series { name: "sent", values: vec![1.0, 5.0, 2.0], color: BLUE_LINE }, Series { name: "opened", values: vec![0.0, 2.0, 1.0], color: GREEN_LINE }];
        let svg = daily(&dates, &series, &|v| format!("{v:.0}"));
        assert!(svg.starts_with("<svg") && svg.contains("01-02") && svg.contains("opened"), "{svg}");
        let marks = [Mark { ts: 0, label: "open".into(), highlighted: true }];
        let svg = timeline(&marks, 3_600_000);
        assert!(svg.contains("conversion") && svg.contains("open"), "{svg}");
        // Nothing to draw still draws axes.
        assert!(daily(&[], &[], &|v| v.to_string()).starts_with("<svg"));
    }
}
