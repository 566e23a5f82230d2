//! The latency plot, hand-written SVG: one point per operation (x = invocation time, y =
//! latency on a log scale, colored by outcome), fault windows shaded and labelled, and below
//! it an availability strip (share of operations that succeeded, per second).

use std::fmt::Write;

use crate::history::F;
use crate::history::Op;
use crate::history::OpType;
use crate::history::pair;

const WIDTH: f64 = 1100.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 30.0;
const LAT_HEIGHT: f64 = 330.0;
const GAP: f64 = 50.0;
const AV_HEIGHT: f64 = 110.0;
const BOTTOM: f64 = 40.0;
/// Points drawn at most (evenly thinned beyond).
const MAX_POINTS: usize = 30_000;

fn fault_color(fault: &str) -> &'static str {
    match fault {
        "kill" => "#d62728",
        "pause" => "#9467bd",
        "partition" => "#ff7f0e",
        "loss" => "#8c564b",
        "clock" => "#17becf",
        "seal" => "#e377c2",
        _ => "#7f7f7f",
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Renders the plot for workload operations of `ops` and fault `windows` (name, start, stop).
pub fn latency_plot(title: &str, ops: &[Op], windows: &[(String, u64, u64)]) -> String {
    let paired: Vec<_> = pair(ops)
        .into_iter()
        .filter(|op| op.invoke.f != F::Control && op.done.is_some())
        .collect();
    let end_ns = ops.iter().map(|o| o.time_ns).max().unwrap_or(1).max(1);
    let seconds = end_ns as f64 / 1e9;
    let plot_w = WIDTH - LEFT - RIGHT;
    let height = TOP + LAT_HEIGHT + GAP + AV_HEIGHT + BOTTOM;
    let x = |ns: u64| LEFT + (ns as f64 / end_ns as f64) * plot_w;
    let (min_ms, max_ms) = (0.1f64, 20_000f64);
    let y = |ms: f64| {
        let ms = ms.clamp(min_ms, max_ms);
        TOP + LAT_HEIGHT * (1.0 - (ms.log10() - min_ms.log10()) / (max_ms.log10() - min_ms.log10()))
    };
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
<text x="{LEFT}" y="18" font-size="14">{}</text>
"#,
        escape(title)
    );
    // Fault windows across both panels.
    for (fault, start, stop) in windows {
        let (x0, x1) = (x(*start), x(*stop));
        let _ = writeln!(
            svg,
            r#"<rect x="{x0:.1}" y="{TOP}" width="{:.1}" height="{:.1}" fill="{}" fill-opacity="0.15"><title>{} {:.1}s-{:.1}s</title></rect><text x="{:.1}" y="{:.1}" fill="{}" font-size="9">{}</text>"#,
            (x1 - x0).max(1.0),
            LAT_HEIGHT + GAP + AV_HEIGHT,
            fault_color(fault),
            escape(fault),
            *start as f64 / 1e9,
            *stop as f64 / 1e9,
            x0 + 2.0,
            TOP + 10.0,
            fault_color(fault),
            escape(fault)
        );
    }
    // Axes and grid.
    for decade in [0.1f64, 1.0, 10.0, 100.0, 1000.0, 10_000.0] {
        let yy = y(decade);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" x2="{:.1}" y1="{yy:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{decade} ms</text>"##,
            WIDTH - RIGHT,
            LEFT - 4.0,
            yy + 4.0
        );
    }
    let ticks = 10;
    for i in 0..=ticks {
        let t = seconds * i as f64 / ticks as f64;
        let xx = LEFT + plot_w * i as f64 / ticks as f64;
        let _ = writeln!(
            svg,
            r#"<text x="{xx:.1}" y="{:.1}" text-anchor="middle">{t:.0}s</text>"#,
            height - BOTTOM + 16.0
        );
    }
    let _ = writeln!(
        svg,
        r##"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{LAT_HEIGHT}" fill="none" stroke="#444"/>
<text x="14" y="{:.1}" transform="rotate(-90 14 {:.1})">latency (log)</text>"##,
        TOP + LAT_HEIGHT / 2.0,
        TOP + LAT_HEIGHT / 2.0
    );
    // Points.
    let stride = paired.len().div_ceil(MAX_POINTS).max(1);
    for op in paired.iter().step_by(stride) {
        let Some(done) = op.done else { continue };
        let latency_ms = (done.time_ns.saturating_sub(op.invoke.time_ns)) as f64 / 1e6;
        let color = match done.kind {
            OpType::Ok => "#2ca02c",
            OpType::Fail => "#ff7f0e",
            _ => "#1f77b4",
        };
        let _ = writeln!(
            svg,
            r#"<circle cx="{:.1}" cy="{:.1}" r="1.6" fill="{color}" fill-opacity="0.6"/>"#,
            x(op.invoke.time_ns),
            y(latency_ms)
        );
    }
    // Availability per second.
    let buckets = (seconds.ceil() as usize).max(1);
    let mut total = vec![0u32; buckets];
    let mut good = vec![0u32; buckets];
    for op in &paired {
        let bucket = ((op.invoke.time_ns as f64 / 1e9) as usize).min(buckets - 1);
        total[bucket] += 1;
        if op.kind() == OpType::Ok {
            good[bucket] += 1;
        }
    }
    let av_top = TOP + LAT_HEIGHT + GAP;
    let mut points = String::new();
    for (i, (t, g)) in total.iter().zip(&good).enumerate() {
        if *t == 0 {
            continue;
        }
        let share = *g as f64 / *t as f64;
        let xx = LEFT + plot_w * (i as f64 + 0.5) / buckets as f64;
        let yy = av_top + AV_HEIGHT * (1.0 - share);
        let _ = write!(points, "{xx:.1},{yy:.1} ");
    }
    let _ = writeln!(
        svg,
        r##"<rect x="{LEFT}" y="{av_top}" width="{plot_w}" height="{AV_HEIGHT}" fill="none" stroke="#444"/>
<polyline points="{points}" fill="none" stroke="#2ca02c" stroke-width="1.5"/>
<text x="{:.1}" y="{:.1}" text-anchor="end">100%</text><text x="{:.1}" y="{:.1}" text-anchor="end">0%</text>
<text x="14" y="{:.1}" transform="rotate(-90 14 {:.1})">ok share</text>
<text x="{:.1}" y="{:.1}" font-size="10"><tspan fill="#2ca02c">● ok</tspan>  <tspan fill="#ff7f0e">● fail</tspan>  <tspan fill="#1f77b4">● info (timeout: latency = timeout)</tspan></text>
</svg>"##,
        LEFT - 4.0,
        av_top + 4.0,
        LEFT - 4.0,
        av_top + AV_HEIGHT,
        av_top + AV_HEIGHT / 2.0,
        av_top + AV_HEIGHT / 2.0,
        WIDTH - RIGHT - 330.0,
        TOP - 6.0
    );
    svg
}
