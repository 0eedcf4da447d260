//! Confusion-matrix heat-map.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{DrawResult, TickedAxis};
use crate::report::figure::FONT;
use crate::report::types::EvalReport;

/// White → dark blue by `f` in [0, 1].
fn shade(f: f64) -> RGBColor {
    let f = if f.is_finite() {
        f.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let mix = |lo: f64, hi: f64| (lo + (hi - lo) * f).round() as u8;
    RGBColor(mix(255.0, 8.0), mix(255.0, 48.0), mix(255.0, 107.0))
}

/// Share of row `t` that cell `(t, p)` holds (0 for an empty row).
pub(crate) fn row_share(confusion: &[Vec<usize>], t: usize, p: usize) -> f64 {
    let total: usize = confusion[t].iter().sum();
    if total == 0 {
        0.0
    } else {
        confusion[t][p] as f64 / total as f64
    }
}

pub(super) fn draw_confusion<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    r: &EvalReport,
) -> DrawResult<DB> {
    let n = r.confusion.len();
    let title = format!(
        "{} on {}: accuracy {:.2} %",
        r.model,
        r.dataset,
        100.0 * r.accuracy
    );
    let body = root.titled(&title, (FONT, 18))?;
    // Short names go on both axes; long names only on the y axis, the x axis shows indices.
    let names: Vec<String> = (0..n).map(|i| r.class_name(i)).collect();
    let short = names.iter().all(|s| s.chars().count() <= 3);
    let y_names: Vec<String> = if short {
        names.clone()
    } else {
        names
            .iter()
            .enumerate()
            .map(|(i, s)| format!("{i}: {s}"))
            .collect()
    };
    let longest = y_names.iter().map(|s| s.chars().count()).max().unwrap_or(1) as u32;
    let ticks: Vec<f64> = (0..n).map(|i| i as f64).collect();
    let range = -0.5..(n as f64 - 0.5);
    let mut chart = ChartBuilder::on(&body)
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(30 + 7 * longest.min(24))
        .build_cartesian_2d(
            TickedAxis::linear(range.clone(), ticks.clone()),
            TickedAxis::linear(range, ticks),
        )?;
    // Row t is drawn at y = n-1-t so that true class 0 is at the top.
    let row_y = |t: usize| (n - 1 - t) as f64;
    let x_label = |x: &f64| {
        let i = x.round() as usize;
        if short {
            names.get(i).cloned().unwrap_or_default()
        } else {
            i.to_string()
        }
    };
    let y_label = |y: &f64| {
        let t = (n as f64 - 1.0 - y.round()) as usize;
        y_names.get(t).cloned().unwrap_or_default()
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("predicted class")
        .y_desc("true class")
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 14))
        .x_label_formatter(&x_label)
        .y_label_formatter(&y_label)
        .draw()?;
    let cells = (0..n).flat_map(|t| (0..n).map(move |p| (t, p)));
    chart.draw_series(cells.clone().map(|(t, p)| {
        let (x, y) = (p as f64, row_y(t));
        Rectangle::new(
            [(x - 0.5, y - 0.5), (x + 0.5, y + 0.5)],
            shade(row_share(&r.confusion, t, p)).filled(),
        )
    }))?;
    let (w, h) = chart.plotting_area().dim_in_pixel();
    let cell_px = w.min(h) as f64 / n as f64;
    if cell_px >= 14.0 {
        let size = (cell_px / 3.2).clamp(8.0, 16.0);
        chart.draw_series(cells.map(|(t, p)| {
            let color: &'static RGBColor = if row_share(&r.confusion, t, p) > 0.5 {
                &WHITE
            } else {
                &BLACK
            };
            let style = TextStyle::from((FONT, size).into_font())
                .color(color)
                .pos(Pos::new(HPos::Center, VPos::Center));
            Text::new(r.confusion[t][p].to_string(), (p as f64, row_y(t)), style)
        }))?;
    }
    Ok(())
}
