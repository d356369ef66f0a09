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

/// A daily chart's size on the campaign page, three across: the grid's column at a
/// 1,400 px window less the figure's padding (`.charts` in console.css). Charts are drawn at
/// the size they are shown, so that their text is the size it says.
pub const SMALL: (u32, u32) = (420, 220);
/// A daily chart alone across a page (`figure.chart.wide`).
pub const WIDE: (u32, u32) = (880, 300);
/// Plotters writes a font's size divided by 1.24 into the SVG: 14 is 11.3 px.
const PLOTTERS_TEXT: f64 = 14.0;
/// The text of the charts drawn by hand, in px.
const TEXT_PX: f64 = 12.0;
/// How wide a character of that text is at most, in em: time line labels are laid out with
/// it. Debian's sans-serif (DejaVu Sans) takes 0.55 to 0.61 em for a label's characters.
const CHAR_EM: f64 = 0.66;

/// Lines over days (`dates` label the x axis) drawn at `size`; `y_label` formats the y
/// axis's values.
pub fn daily(size: (u32, u32), dates: &[String], series: &[Series<'_>], y_label: &dyn Fn(f64) -> String) -> String {
    let mut svg = String::new();
    if let Err(err) = draw_daily(&mut svg, size, dates, series, y_label) {
        tracing::warn!(error = %err, "console chart failed");
        return String::new();
    }
    svg
}

fn draw_daily(
    svg: &mut String,
    size: (u32, u32),
    dates: &[String],
    series: &[Series<'_>],
    y_label: &dyn Fn(f64) -> String,
) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::with_string(svg, size).into_drawing_area();
    root.fill(&WHITE)?;
    let top = series.iter().flat_map(|s| s.values.iter().copied()).fold(0.0_f64, f64::max);
    let top = if top > 0.0 { top * 1.1 } else { 1.0 };
    let days = dates.len().max(2);
    // The y axis as wide as its longest label (the top one, near enough) needs.
    let y_area = (y_label(top).chars().count() as f64 * CHAR_EM * PLOTTERS_TEXT / 1.24 + 14.0).clamp(32.0, 110.0) as u32;
    let mut chart = ChartBuilder::on(&root)
        .margin(8)
        .x_label_area_size(24)
        .y_label_area_size(y_area)
        .build_cartesian_2d(0..days - 1, 0.0..top)?;
    let label = |index: &usize| dates.get(*index).map(|date| date.get(5..).unwrap_or(date).to_owned()).unwrap_or_default();
    // A label per 60 px or so: "02-17" is about 35.
    let x_labels = ((size.0 as usize).saturating_sub(y_area as usize) / 60).clamp(2, 10);
    chart
        .configure_mesh()
        .x_labels(x_labels)
        .y_labels(5)
        .x_label_formatter(&label)
        .y_label_formatter(&|value| y_label(*value))
        .light_line_style(RGBColor(240, 242, 245))
        .label_style(("sans-serif", PLOTTERS_TEXT))
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
            .label_font(("sans-serif", PLOTTERS_TEXT))
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

/// A time line's width: the explain page's, with room to spare in a 1,400 px window.
pub const TIMELINE_WIDTH: f64 = 960.0;

/// Marks on a time line ending at `end` (the conversion), newest on the right. Each label
/// starts at its mark and takes the row nearest the line where it overlaps no other (its
/// width estimated from its characters), so touches close in time stack their labels.
pub fn timeline(marks: &[Mark], end: i64) -> String {
    let (width, left, right) = (TIMELINE_WIDTH, 24.0, 40.0);
    let (row_h, gap) = (TEXT_PX + 6.0, 8.0);
    let start = marks.iter().map(|mark| mark.ts).min().unwrap_or(end - 3_600_000).min(end - 60_000);
    let span = (end - start).max(1) as f64;
    let x = |ts: i64| left + (ts - start) as f64 / span * (width - left - right);
    // Each label's box, from its mark's x (kept inside the chart), then the lowest free row.
    let mut labels: Vec<(usize, f64, f64)> = marks
        .iter()
        .enumerate()
        .map(|(i, mark)| {
            let w = text_width(&mark.label);
            let from = (x(mark.ts) - 4.0).min(width - w - 4.0).max(4.0);
            (i, from, from + w)
        })
        .collect();
    labels.sort_by(|a, b| a.1.total_cmp(&b.1));
    let mut row_ends: Vec<f64> = Vec::new();
    let mut rows = vec![0; marks.len()];
    for &(i, from, to) in &labels {
        let row = row_ends.iter().position(|&row_end| row_end + gap <= from).unwrap_or(row_ends.len());
        if row == row_ends.len() {
            row_ends.push(to);
        } else {
            row_ends[row] = to;
        }
        rows[i] = row;
    }
    let axis_y = 12.0 + row_ends.len().max(1) as f64 * row_h + 10.0;
    let height = axis_y + 34.0;
    let hex = |RGBColor(r, g, b): RGBColor| format!("#{r:02x}{g:02x}{b:02x}");
    let mut svg = format!(
        "<svg width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"candidate touches before the conversion\">\
         <line x1=\"{}\" y1=\"{axis_y}\" x2=\"{}\" y2=\"{axis_y}\" stroke=\"{}\" stroke-width=\"2\"/>",
        left - 10.0,
        width - right + 14.0,
        hex(GREY_LINE)
    );
    for &(i, from, _) in &labels {
        let mark = &marks[i];
        let (at, color) = (x(mark.ts), hex(if mark.highlighted { GREEN_LINE } else { GREY_LINE }));
        let label_y = axis_y - 14.0 - rows[i] as f64 * row_h;
        // A thin line from the mark up to its label's row.
        svg.push_str(&format!(
            "<line x1=\"{at:.1}\" y1=\"{:.1}\" x2=\"{at:.1}\" y2=\"{:.1}\" stroke=\"{color}\" stroke-opacity=\"0.5\"/>\
             <circle cx=\"{at:.1}\" cy=\"{axis_y}\" r=\"{}\" fill=\"{color}\"/>\
             <text class=\"mark\" x=\"{from:.1}\" y=\"{label_y:.1}\" font-size=\"{TEXT_PX}\" fill=\"{color}\">{}</text>",
            axis_y - 5.0,
            label_y + 3.0,
            if mark.highlighted { 7 } else { 5 },
            escape(&mark.label)
        ));
    }
    let at = x(end);
    let first = chrono::DateTime::from_timestamp_millis(start).map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string()).unwrap_or_default();
    svg.push_str(&format!(
        "<rect x=\"{:.1}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{blue}\"/>\
         <text x=\"{:.1}\" y=\"{below:.1}\" font-size=\"{TEXT_PX}\" text-anchor=\"end\" fill=\"{blue}\">conversion</text>\
         <text x=\"{left}\" y=\"{below:.1}\" font-size=\"{TEXT_PX}\" fill=\"{}\">{first}</text></svg>",
        at - 6.0,
        axis_y - 6.0,
        at + 6.0,
        hex(GREY_LINE),
        blue = hex(BLUE_LINE),
        below = axis_y + 24.0,
    ));
    svg
}

/// A label's width at most, estimated from its characters.
fn text_width(text: &str) -> f64 {
    text.chars().count() as f64 * CHAR_EM * TEXT_PX
}

/// A difference with its interval on an axis through zero: the bar spans the interval,
/// the dot is the difference (values are rates: drawn as percentages). Nothing to draw
/// when any of the three is missing.
pub fn interval(diff: Option<f64>, low: Option<f64>, high: Option<f64>) -> String {
    let (Some(diff), Some(low), Some(high)) = (diff, low, high) else {
        return String::new();
    };
    let (width, height, pad) = (640.0, 64.0, 32.0);
    let reach = low.abs().max(high.abs()).max(1e-9) * 1.2;
    let x = |value: f64| pad + (value + reach) / (2.0 * reach) * (width - 2.0 * pad);
    let mid = height / 2.0;
    let RGBColor(r, g, b) = if low > 0.0 { GREEN_LINE } else if high < 0.0 { ORANGE_LINE } else { GREY_LINE };
    let bar = format!("#{r:02x}{g:02x}{b:02x}");
    format!(
        "<svg width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"difference {d:.2}% (95% interval {l:.2}% to {h:.2}%)\">\
         <line x1=\"{zero:.1}\" y1=\"4\" x2=\"{zero:.1}\" y2=\"{bottom:.1}\" stroke=\"#999\" stroke-dasharray=\"3 3\"/>\
         <text x=\"{zero:.1}\" y=\"{text_y:.1}\" font-size=\"{TEXT_PX}\" text-anchor=\"middle\" fill=\"#666\">0</text>\
         <line x1=\"{x_low:.1}\" y1=\"{mid:.1}\" x2=\"{x_high:.1}\" y2=\"{mid:.1}\" stroke=\"{bar}\" stroke-width=\"6\" stroke-linecap=\"round\"/>\
         <circle cx=\"{x_diff:.1}\" cy=\"{mid:.1}\" r=\"6\" fill=\"{bar}\" stroke=\"#fff\" stroke-width=\"2\"/>\
         <text x=\"{x_low:.1}\" y=\"{label_y:.1}\" font-size=\"{TEXT_PX}\" text-anchor=\"middle\">{l:.2}%</text>\
         <text x=\"{x_high:.1}\" y=\"{label_y:.1}\" font-size=\"{TEXT_PX}\" text-anchor=\"middle\">{h:.2}%</text></svg>",
        zero = x(0.0),
        bottom = height - 16.0,
        text_y = height - 2.0,
        x_low = x(low),
        x_high = x(high),
        x_diff = x(diff),
        label_y = mid - 11.0,
        d = diff * 100.0,
        l = low * 100.0,
        h = high * 100.0,
    )
}

/// Each subject's values side by side as horizontal bars, one colour per series (the
/// legend on top), all on one scale: which campaign each model credits, at a glance.
pub fn grouped_bars(rows: &[(String, Vec<f64>)], series: &[String]) -> String {
    const COLORS: [&str; 5] = ["#2c5fd9", "#dc7814", "#1a7f37", "#8250df", "#8c94a0"];
    let (label_w, bar_h, gap, width) = (180.0, 13.0, 10.0, 900.0);
    let max = rows.iter().flat_map(|(_, values)| values.iter().copied()).fold(0.0f64, f64::max).max(1e-9);
    let group_h = bar_h * series.len() as f64 + gap;
    let height = 30.0 + group_h * rows.len() as f64;
    let mut svg = format!("<svg width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"conversions under each model, per campaign\">");
    for (i, name) in series.iter().enumerate() {
        let x = label_w + i as f64 * 130.0;
        svg.push_str(&format!(
            "<rect x=\"{x}\" y=\"6\" width=\"12\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"15\" font-size=\"{TEXT_PX}\">{}</text>",
            COLORS[i % COLORS.len()],
            x + 16.0,
            escape(name)
        ));
    }
    for (r, (label, values)) in rows.iter().enumerate() {
        let top = 30.0 + r as f64 * group_h;
        svg.push_str(&format!(
            "<text x=\"{}\" y=\"{:.1}\" font-size=\"{TEXT_PX}\" text-anchor=\"end\">{}</text>",
            label_w - 8.0,
            top + group_h / 2.0,
            escape(label)
        ));
        for (i, value) in values.iter().enumerate() {
            let w = (value / max * (width - label_w - 60.0)).max(0.0);
            let y = top + i as f64 * bar_h;
            svg.push_str(&format!(
                "<rect x=\"{label_w}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"{}\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\">{value:.2}</text>",
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

    /// Each `<tag ...>` of `svg`: its attributes' text and the text after it.
    fn tags<'a>(svg: &'a str, tag: &str) -> Vec<(&'a str, &'a str)> {
        svg.match_indices(&format!("<{tag} "))
            .map(|(at, _)| {
                let (attributes, after) = svg[at..].split_once('>').unwrap();
                (attributes, after.split('<').next().unwrap().trim())
            })
            .collect()
    }

    fn attr(tag: &str, name: &str) -> f64 {
        let at = tag.find(&format!(" {name}=\"")).unwrap_or_else(|| panic!("no {name} in {tag}")) + name.len() + 3;
        tag[at..].split('"').next().unwrap().parse().unwrap()
    }

    #[test]
    fn charts_are_svg_with_their_labels() {
        let dates: Vec<String> = (1..=3).map(|d| format!("2026-01-0{d}")).collect();
        let series = [Series { name: "sent", values: vec![1.0, 5.0, 2.0], color: BLUE_LINE }, Series { name: "opened", values: vec![0.0, 2.0, 1.0], color: GREEN_LINE }];
        let svg = daily(SMALL, &dates, &series, &|v| format!("{v:.0}"));
        assert!(svg.starts_with("<svg") && svg.contains("01-02") && svg.contains("opened"), "{svg}");
        let marks = [Mark { ts: 0, label: "open".into(), highlighted: true }];
        let svg = timeline(&marks, 3_600_000);
        assert!(svg.contains("conversion") && svg.contains("open"), "{svg}");
        // Nothing to draw still draws axes.
        assert!(daily(WIDE, &[], &[], &|v| v.to_string()).starts_with("<svg"));
    }

    #[test]
    fn charts_are_drawn_at_the_size_they_say_with_text_of_11_px_or_more() {
        let dates: Vec<String> = (1..=30).map(|d| format!("2026-01-{d:02}")).collect();
        let series = [Series { name: "revenue", values: (0..30).map(|d| f64::from(d) * 1234.5).collect(), color: BLUE_LINE }];
        let marks = [Mark { ts: 0, label: "sent 37e16d0677".into(), highlighted: false }];
        let bars = [("winter-sale-2026".to_owned(), vec![1.0, 2.5])];
        for svg in [
            daily(SMALL, &dates, &series, &|v| format!("{v:.0}")),
            daily(WIDE, &dates, &series, &|v| format!("{v:.0}")),
            timeline(&marks, 3_600_000),
            interval(Some(0.01), Some(-0.02), Some(0.04)),
            grouped_bars(&bars, &["last_touch".to_owned(), "linear".to_owned()]),
        ] {
            let (root, _) = tags(&svg, "svg")[0];
            let view_box: Vec<f64> = root.split("viewBox=\"").nth(1).unwrap().split('"').next().unwrap().split(' ').map(|n| n.parse().unwrap()).collect();
            assert_eq!((attr(root, "width"), attr(root, "height")), (view_box[2], view_box[3]), "{root}");
            for (text, label) in tags(&svg, "text") {
                assert!(attr(text, "font-size") >= 11.0, "{label:?}: {text}");
            }
        }
    }

    #[test]
    fn time_line_labels_of_close_touches_take_rows_where_they_overlap_nothing() {
        // A message sent, delivered and opened within minutes, an older one days before,
        // and a touch a second before the conversion (its label would run off the right).
        let day = 86_400_000;
        let end = 3 * day;
        let marks: Vec<Mark> = [(0, "sent 4adaae2a0c"), (2 * day, "sent 37e16d0677"), (2 * day + 13_000, "delivered 37e16d0677"), (2 * day + 60_000, "opened 37e16d0677"), (end - 1_000, "clicked 37e16d0677")]
            .into_iter()
            .map(|(ts, label)| Mark { ts, label: label.into(), highlighted: false })
            .collect();
        let svg = timeline(&marks, end);
        let labels: Vec<(f64, f64, f64)> = tags(&svg, "text")
            .into_iter()
            .filter(|(tag, _)| tag.contains("class=\"mark\""))
            .map(|(tag, label)| (attr(tag, "y"), attr(tag, "x"), attr(tag, "x") + text_width(label)))
            .collect();
        assert_eq!(labels.len(), marks.len(), "{svg}");
        for (i, a) in labels.iter().enumerate() {
            assert!(a.1 >= 0.0 && a.2 <= TIMELINE_WIDTH, "a label outside the chart: {a:?}");
            for b in labels[i + 1..].iter().filter(|b| b.0 == a.0) {
                assert!(a.2 <= b.1 || b.2 <= a.1, "labels overlap on a row: {a:?} {b:?}");
            }
        }
        // The three close touches need three rows; the old one shares the first.
        let mut rows: Vec<f64> = labels.iter().map(|label| label.0).collect();
        rows.sort_by(f64::total_cmp);
        rows.dedup();
        assert!(rows.len() >= 3, "{labels:?}");
    }
}
