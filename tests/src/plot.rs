//! SVG plots of the reproductions, drawn with plotters.

use plotters::prelude::*;

/// One series of (x, mean, low, high) points: a mean with a low..high band (percentiles).
pub struct Band<'a> {
    /// Legend label.
    pub label: &'a str,
    /// (x, mean, low, high).
    pub points: Vec<(f64, f64, f64, f64)>,
}

/// Draws mean lines with percentile error bars, plus optional reference lines `y = f(x)`.
pub fn line_chart(
    path: &std::path::Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    bands: &[Band<'_>],
    references: &[(&str, &dyn Fn(f64) -> f64)],
) -> Result<(), Box<dyn std::error::Error>> {
    let xs = bands.iter().flat_map(|b| b.points.iter().map(|p| p.0));
    let (x0, x1) = xs.fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
    let y1 = bands
        .iter()
        .flat_map(|b| b.points.iter().map(|p| p.3))
        .fold(1.0f64, f64::max)
        * 1.1;
    let root = SVGBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d((x0 - 0.5)..(x1 + 0.5), 0.0..y1)?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        // Label whole numbers only (x is log2 N or similar).
        .x_label_formatter(&|x| match (x - x.round()).abs() < 1e-9 {
            true => format!("{x:.0}"),
            false => String::new(),
        })
        .y_label_formatter(&|y| format!("{y:.0}"))
        .light_line_style(WHITE)
        .draw()?;
    let colours = [BLUE, RED, GREEN, MAGENTA];
    for (k, band) in bands.iter().enumerate() {
        let c = colours[k % colours.len()];
        chart
            .draw_series(LineSeries::new(
                band.points.iter().map(|p| (p.0, p.1)),
                c.stroke_width(2),
            ))?
            .label(band.label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        chart.draw_series(
            band.points
                .iter()
                .map(|p| ErrorBar::new_vertical(p.0, p.2, p.1, p.3, c.filled(), 8)),
        )?;
    }
    for (k, (label, f)) in references.iter().enumerate() {
        let c = BLACK.mix(0.5 - 0.2 * k as f64);
        let steps = 50;
        let line = (0..=steps).map(|s| {
            let x = x0 + (x1 - x0) * s as f64 / steps as f64;
            (x, f(x))
        });
        chart
            .draw_series(DashedLineSeries::new(line, 6, 4, c.stroke_width(1)))?
            .label(*label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c));
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    root.present()?;
    Ok(())
}

/// Draws the chart's legend (its series' labels) at `at`.
fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    at: SeriesLabelPosition,
) -> Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    chart
        .configure_series_labels()
        .position(at)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// How many times each value occurs: `counts[v]` for `v` in `0..=max`, the input of
/// [`histogram`].
pub fn counts(values: impl IntoIterator<Item = usize>) -> Vec<u64> {
    let mut counts = Vec::new();
    for v in values {
        if counts.len() <= v {
            counts.resize(v + 1, 0);
        }
        counts[v] += 1;
    }
    counts
}

/// A bar chart of a distribution: `counts[x]` observations of value `x`, drawn as fractions
/// of the total (a PDF, as Stoica Fig. 10(b)), with an optional dashed marker at `x = m`.
pub fn histogram(
    path: &std::path::Path,
    title: &str,
    x_label: &str,
    counts: &[u64],
    marker: Option<(&str, f64)>,
) -> Result<(), Box<dyn std::error::Error>> {
    let total = counts.iter().sum::<u64>().max(1) as f64;
    let top = counts.iter().copied().max().unwrap_or(0) as f64 / total * 1.15;
    let root = SVGBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5..(counts.len() as f64 - 0.5), 0.0..top.max(0.01))?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc("fraction of lookups")
        .x_label_formatter(&|x| match (x - x.round()).abs() < 1e-9 {
            true => format!("{x:.0}"),
            false => String::new(),
        })
        .y_label_formatter(&|y| format!("{y:.2}"))
        .light_line_style(WHITE)
        .draw()?;
    chart.draw_series(counts.iter().enumerate().map(|(x, &c)| {
        let x = x as f64;
        Rectangle::new(
            [(x - 0.4, 0.0), (x + 0.4, c as f64 / total)],
            BLUE.mix(0.7).filled(),
        )
    }))?;
    if let Some((label, m)) = marker {
        chart
            .draw_series(DashedLineSeries::new(
                [(m, 0.0), (m, top)],
                6,
                4,
                BLACK.stroke_width(1),
            ))?
            .label(label)
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    }
    root.present()?;
    Ok(())
}

/// A node on a ring picture: its position as a fraction of the identifier circle.
#[derive(Clone, Copy, Debug)]
pub struct RingNode {
    /// Position on the circle, 0..1 (the id as a fraction of 2^160).
    pub at: f64,
    /// Crashed nodes are drawn hollow and grey.
    pub alive: bool,
}

/// Draws an identifier circle with its nodes and one node's fingers as chords (positions
/// are fractions of the circle, 0 at the top, clockwise).
pub fn ring(
    path: &std::path::Path,
    title: &str,
    nodes: &[RingNode],
    fingers: (f64, &[f64]),
) -> Result<(), Box<dyn std::error::Error>> {
    let point = |at: f64, r: f64| {
        let a = at * std::f64::consts::TAU;
        (r * a.sin(), r * a.cos())
    };
    let root = SVGBackend::new(path, (700, 740)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(20)
        .build_cartesian_2d(-1.25..1.25, -1.25..1.25)?;
    let circle = (0..=360).map(|d| point(d as f64 / 360.0, 1.0));
    chart.draw_series(std::iter::once(PathElement::new(
        circle.collect::<Vec<_>>(),
        BLACK.mix(0.3).stroke_width(2),
    )))?;
    let (from, to) = fingers;
    chart
        .draw_series(to.iter().map(|&t| {
            PathElement::new(
                vec![point(from, 1.0), point(t, 1.0)],
                GREEN.mix(0.6).stroke_width(2),
            )
        }))?
        .label("fingers of the highlighted node")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], GREEN.stroke_width(2)));
    chart.draw_series(nodes.iter().map(|n| {
        let style = match n.alive {
            true => BLUE.filled(),
            false => RGBColor(150, 150, 150).stroke_width(2),
        };
        Circle::new(point(n.at, 1.0), 6, style)
    }))?;
    chart.draw_series(std::iter::once(Circle::new(
        point(from, 1.0),
        10,
        GREEN.stroke_width(3),
    )))?;
    legend(&mut chart, SeriesLabelPosition::LowerRight)?;
    root.present()?;
    Ok(())
}

/// Where [`lines`] puts its legend (plotters' type, so callers need no plotters of their own).
pub use plotters::prelude::SeriesLabelPosition;

/// One line of a [`lines`] chart: points joined and marked, in colour number `colour`,
/// dashed for a reference (a bound, a theory).
pub struct Line<'a> {
    /// Legend label.
    pub label: &'a str,
    /// (x, y), in x order.
    pub points: Vec<(f64, f64)>,
    /// Index into the palette: lines of one colour belong together.
    pub colour: usize,
    /// Drawn dashed and without markers.
    pub dashed: bool,
}

/// The palette of [`lines`].
const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(90, 90, 90),
];

/// Draws `series` on one chart, with y on a log10 scale when `log_y` (values must then be
/// positive). The legend, of the lines with a label, goes to `legend_at`.
pub fn lines(
    path: &std::path::Path,
    title: &str,
    (x_label, y_label): (&str, &str),
    series: &[Line<'_>],
    log_y: bool,
    legend_at: SeriesLabelPosition,
) -> Result<(), Box<dyn std::error::Error>> {
    let all = || series.iter().flat_map(|s| s.points.iter().copied());
    let (x0, x1) = all().fold((f64::MAX, f64::MIN), |(a, b), (x, _)| (a.min(x), b.max(x)));
    let (y0, y1) = all().fold((f64::MAX, f64::MIN), |(a, b), (_, y)| (a.min(y), b.max(y)));
    let pad = (x1 - x0).max(1e-9) * 0.03;
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60);
    // The same drawing on either y scale: the chart types differ, the code does not.
    macro_rules! draw {
        ($chart:expr, $y_fmt:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(x_label)
                .y_desc(y_label)
                .x_label_formatter(&|x| format!("{}", (x * 100.0).round() / 100.0))
                .y_label_formatter($y_fmt)
                .light_line_style(WHITE.mix(0.0))
                .draw()?;
            for s in series {
                let c = PALETTE[s.colour % PALETTE.len()];
                let pts = s.points.iter().copied();
                // A line without a label stays out of the legend.
                if s.dashed {
                    let a =
                        chart.draw_series(DashedLineSeries::new(pts, 6, 4, c.stroke_width(1)))?;
                    if !s.label.is_empty() {
                        a.label(s.label)
                            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c));
                    }
                } else {
                    let a = chart.draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))?;
                    if !s.label.is_empty() {
                        a.label(s.label).legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                        });
                    }
                    chart.draw_series(pts.map(|p| Circle::new(p, 3, c.filled())))?;
                }
            }
            legend(&mut chart, legend_at)?;
        }};
    }
    if log_y {
        let (lo, hi) = (y0.max(1e-9) / 1.5, y1.max(1e-9) * 1.5);
        draw!(
            builder.build_cartesian_2d((x0 - pad)..(x1 + pad), (lo..hi).log_scale())?,
            &|y: &f64| {
                let e = y.log10();
                if (e - e.round()).abs() < 1e-6 {
                    format!("{}", 10f64.powi(e.round() as i32))
                } else {
                    String::new()
                }
            }
        );
    } else {
        let top = if y1 <= 1.0 { 1.05 } else { y1 * 1.1 };
        draw!(
            builder.build_cartesian_2d((x0 - pad)..(x1 + pad), y0.min(0.0)..top)?,
            &|y: &f64| format!("{}", (y * 100.0).round() / 100.0)
        );
    }
    root.present()?;
    Ok(())
}
