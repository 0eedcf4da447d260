//! Test accuracy against stored size, one point per experiment row.

use plotters::coord::ranged1d::{AsRangedCoord, Ranged, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{padded_range, tick_label, DrawResult, TickedAxis, PALETTE};
use crate::report::experiment::ExperimentTable;
use crate::report::figure::FONT;
use crate::report::text::fmt_sig;

/// A plottable row: (group index, KiB, accuracy %, stage).
struct ScatterPoint {
    group: usize,
    kib: f64,
    accuracy: f64,
    stage: String,
}

/// Groups ("model / dataset") and the plottable points of `table`.
fn scatter_groups(table: &ExperimentTable) -> (Vec<String>, Vec<ScatterPoint>) {
    let mut groups: Vec<String> = Vec::new();
    let mut points = Vec::new();
    for row in &table.rows {
        let (kib, accuracy) = (row.bytes as f64 / 1024.0, 100.0 * row.test_accuracy);
        if row.bytes == 0 || !accuracy.is_finite() {
            continue;
        }
        let name = format!("{} / {}", row.model, row.dataset);
        let group = match groups.iter().position(|g| *g == name) {
            Some(i) => i,
            None => {
                groups.push(name);
                groups.len() - 1
            }
        };
        points.push(ScatterPoint {
            group,
            kib,
            accuracy,
            stage: row.stage.clone(),
        });
    }
    (groups, points)
}

/// True if some row of `table` can be plotted (finite accuracy, non-zero size).
pub(super) fn has_points(table: &ExperimentTable) -> bool {
    !scatter_groups(table).1.is_empty()
}

pub(super) fn draw_scatter<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    table: &ExperimentTable,
) -> DrawResult<DB> {
    let (groups, points) = scatter_groups(table);
    let body = root.titled("test accuracy against model size", (FONT, 20))?;
    let (lo, hi) = points.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), p| {
        (lo.min(p.kib), hi.max(p.kib))
    });
    let y = padded_range(points.iter().map(|p| p.accuracy), (Some(0.0), Some(100.0)));
    if hi / lo > 20.0 {
        scatter_chart(
            &body,
            TickedAxis::log((lo / 1.6)..(hi * 1.6)),
            y,
            &groups,
            &points,
        )
    } else {
        let pad = if hi > lo { 0.12 * (hi - lo) } else { 0.25 * hi };
        scatter_chart(&body, (lo - pad).max(0.0)..(hi + pad), y, &groups, &points)
    }
}

fn scatter_chart<DB, XS>(
    area: &DrawingArea<DB, Shift>,
    x: XS,
    (y0, y1): (f64, f64),
    groups: &[String],
    points: &[ScatterPoint],
) -> DrawResult<DB>
where
    DB: DrawingBackend,
    XS: AsRangedCoord<Value = f64>,
    XS::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(area)
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(60)
        .build_cartesian_2d(x, y0..y1)?;
    let span = y1 - y0;
    chart
        .configure_mesh()
        .x_desc("stored size (KiB)")
        .y_desc("test accuracy (%)")
        .label_style((FONT, 12))
        .axis_desc_style((FONT, 14))
        .x_label_formatter(&|v| fmt_sig(*v, 3))
        .y_label_formatter(&|v| tick_label(*v, span))
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.08))
        .draw()?;
    for (g, name) in groups.iter().enumerate() {
        let color = PALETTE[g % PALETTE.len()];
        let mine = points.iter().filter(|p| p.group == g);
        chart
            .draw_series(mine.map(|p| {
                EmptyElement::at((p.kib, p.accuracy))
                    + Circle::new((0, 0), 5, color.filled())
                    + Text::new(p.stage.clone(), (7, -14), (FONT, 12).into_font())
            }))?
            .label(name.as_str())
            .legend(move |(x, y)| Circle::new((x + 8, y), 5, color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font((FONT, 12))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()
}
