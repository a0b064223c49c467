//! Charts drawn on the server as SVG, with no script: a bar for a gauge against its limit, and
//! a line chart of per-minute series over the last hour. Written by hand because what they
//! draw is a few rectangles and polylines; a plotting crate would bring fonts and rasterizers
//! the console does not need.

use maud::{Markup, PreEscaped, html};

/// The chart's drawing area, in SVG units (it scales to the page's width).
const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 120.0;
/// Room on the left for the scale's figures, below for the time labels.
const LEFT: f64 = 40.0;
const BOTTOM: f64 = 16.0;

/// The colours of the series, in order (the stylesheet's palette).
const COLOURS: &[&str] = &[
    "#2b6cb0", "#c05621", "#2f855a", "#6b46c1", "#b83280", "#4a5568",
];

/// A bar `value` long of a track `limit` long.
pub(crate) fn gauge(value: f64, limit: f64) -> Markup {
    let share = if limit > 0.0 {
        (value / limit).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let full = share >= 1.0;
    html! {
        svg.gauge width="80" height="10" viewBox="0 0 80 10" role="img" aria-label={(value) " of " (limit)} {
            rect width="80" height="10" rx="2" fill="#e2e8f0" {}
            rect width=(format!("{:.1}", 80.0 * share)) height="10" rx="2" fill=(if full { "#c05621" } else { "#2b6cb0" }) {}
        }
    }
}

/// One line of a chart: its name and a value per minute, oldest first.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    pub(crate) name: String,
    pub(crate) values: Vec<f64>,
}

/// A line chart of `series` (a value per minute each, the last being the current minute),
/// titled `title`, with a legend and a scale from zero to the largest value.
pub(crate) fn minutes(title: &str, series: &[Series]) -> Markup {
    let points = series.iter().map(|s| s.values.len()).max().unwrap_or(0);
    let top = nice_top(
        series
            .iter()
            .flat_map(|s| s.values.iter().copied())
            .fold(0.0, f64::max),
    );
    let x = |i: usize| LEFT + (WIDTH - LEFT) * i as f64 / (points.max(2) - 1) as f64;
    let y = |v: f64| (HEIGHT - BOTTOM) * (1.0 - v / top);
    html! {
        figure.chart data-chart=(title) {
            figcaption { (title) }
            svg.chart viewBox={"0 0 " (WIDTH) " " (HEIGHT)} preserveAspectRatio="none" role="img" aria-label=(title) {
                line.axis x1=(LEFT) y1=(HEIGHT - BOTTOM) x2=(WIDTH) y2=(HEIGHT - BOTTOM) stroke="#a0aec0" {}
                line.axis x1=(LEFT) y1="0" x2=(LEFT) y2=(HEIGHT - BOTTOM) stroke="#a0aec0" {}
                text x="2" y="10" font-size="10" { (figure(top)) }
                text x="2" y=(HEIGHT - BOTTOM) font-size="10" { "0" }
                text x=(LEFT) y=(HEIGHT - 2.0) font-size="10" { "−" (points.saturating_sub(1)) " min" }
                text x=(WIDTH - 24.0) y=(HEIGHT - 2.0) font-size="10" { "now" }
                @for (i, s) in series.iter().enumerate() {
                    polyline fill="none" stroke-width="1.5" stroke=(COLOURS[i % COLOURS.len()])
                        data-series=(s.name)
                        points=(PreEscaped(s.values.iter().enumerate().map(|(j, v)| format!("{:.1},{:.1}", x(j), y(*v))).collect::<Vec<_>>().join(" "))) {}
                }
            }
            @if series.len() > 1 || series.first().is_some_and(|s| !s.name.is_empty()) {
                ul.legend {
                    @for (i, s) in series.iter().enumerate() {
                        li { svg.swatch width="10" height="10" viewBox="0 0 10 10" aria-hidden="true" { rect width="10" height="10" fill=(COLOURS[i % COLOURS.len()]) {} } " " (s.name) " " span.hint { "(now " (figure(s.values.last().copied().unwrap_or(0.0))) ")" } }
                    }
                }
            }
        }
    }
}

/// The scale's top: the largest value rounded up to 1, 2 or 5 times a power of ten.
fn nice_top(largest: f64) -> f64 {
    if largest <= 1.0 {
        return 1.0;
    }
    let power = 10f64.powf(largest.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|step| step * power)
        .find(|top| *top >= largest)
        .unwrap_or(10.0 * power)
}

/// A figure as the chart prints it: whole when it is, else to one decimal.
fn figure(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scale_rounds_up_to_a_round_figure() {
        assert_eq!(nice_top(0.0), 1.0);
        assert_eq!(nice_top(3.0), 5.0);
        assert_eq!(nice_top(12.0), 20.0);
        assert_eq!(nice_top(50.0), 50.0);
        assert_eq!(nice_top(501.0), 1000.0);
    }

    #[test]
    fn a_chart_draws_each_series_from_zero_to_its_top() {
        let chart = minutes(
            "Orders a minute",
            &[Series {
                name: "orders".into(),
                values: vec![0.0, 5.0, 10.0],
            }],
        )
        .into_string();
        assert!(chart.contains(r#"data-series="orders""#), "{chart}");
        assert!(
            chart.contains("points=\"40.0,104.0 320.0,52.0 600.0,0.0\""),
            "{chart}"
        );
        let bar = gauge(3.0, 4.0).into_string();
        assert!(bar.contains(r#"width="60.0""#), "{bar}");
    }
}
