//! The latency plot of a suite run: one panel per workload, latency percentiles (log scale) with
//! one line per backend, as SVG.

use std::path::Path;

use plotters::prelude::*;

use crate::stats::RowResult;

const COLORS: [RGBColor; 3] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
];

/// Draws the panels of `rows` into the SVG file at `path`.
pub fn latency_svg(rows: &[RowResult], path: &Path) -> anyhow::Result<()> {
    let mut workloads: Vec<&str> = Vec::new();
    let mut backends: Vec<&str> = Vec::new();
    for row in rows {
        if !workloads.contains(&row.workload.as_str()) {
            workloads.push(&row.workload);
        }
        if !backends.contains(&row.backend.as_str()) {
            backends.push(&row.backend);
        }
    }
    if workloads.is_empty() {
        anyhow::bail!("no rows to plot");
    }
    let columns = 3usize;
    let panel_rows = workloads.len().div_ceil(columns);
    let root = SVGBackend::new(path, (1200, 330 * panel_rows as u32 + 40)).into_drawing_area();
    root.fill(&WHITE).map_err(draw_err)?;
    let (title, body) = root.split_vertically(40);
    title
        .titled(
            "Latency percentiles (ms, log scale): Strongroom vs etcd, same machine, same run",
            ("sans-serif", 18),
        )
        .map_err(draw_err)?;
    let panels = body.split_evenly((panel_rows, columns));
    for (panel, workload) in panels.iter().zip(&workloads) {
        let series: Vec<&RowResult> = rows.iter().filter(|r| r.workload == *workload).collect();
        let max = series
            .iter()
            .flat_map(|r| r.percentiles().map(|(_, v)| v))
            .fold(0.1f64, f64::max);
        let min = series
            .iter()
            .map(|r| r.p50_ms)
            .fold(f64::MAX, f64::min)
            .clamp(0.01, max / 2.0);
        let mut chart = ChartBuilder::on(panel)
            .caption(*workload, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(24)
            .y_label_area_size(48)
            .build_cartesian_2d(-0.2f64..4.2f64, (min * 0.7..max * 1.4).log_scale())
            .map_err(draw_err)?;
        let labels = ["p50", "p90", "p99", "p99.9", "max"];
        chart
            .configure_mesh()
            .x_labels(5)
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 0.01 && (0.0..5.0).contains(&i) {
                    labels[i as usize].to_string()
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|y| format!("{y:.2}"))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(draw_err)?;
        for row in series {
            let index = backends.iter().position(|b| *b == row.backend).unwrap_or(0);
            let color = COLORS[index % COLORS.len()];
            let points: Vec<(f64, f64)> = row
                .percentiles()
                .iter()
                .enumerate()
                .map(|(i, (_, v))| (i as f64, v.max(min * 0.7)))
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                .map_err(draw_err)?
                .label(row.backend.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
            chart
                .draw_series(points.iter().map(|p| Circle::new(*p, 3, color.filled())))
                .map_err(draw_err)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK.mix(0.3))
            .draw()
            .map_err(draw_err)?;
    }
    root.present().map_err(draw_err)?;
    Ok(())
}

fn draw_err<E: std::fmt::Debug>(err: E) -> anyhow::Error {
    anyhow::anyhow!("drawing the plot failed: {err:?}")
}
