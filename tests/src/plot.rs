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
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
