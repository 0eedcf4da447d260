//! Training curves: loss and accuracy per epoch, one panel each.

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;

use super::{padded_range, tick_label, DrawResult, TickedAxis, PALETTE};
use crate::report::figure::FONT;
use crate::report::types::History;

/// One line on a panel.
struct Curve {
    label: String,
    color: RGBColor,
    dashed: bool,
    points: Vec<(f64, f64)>,
}

/// Finite `(x, y)` points.
fn finite(points: impl Iterator<Item = (f64, f64)>) -> Vec<(f64, f64)> {
    points
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect()
}

pub(super) fn draw_histories<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    runs: &[History],
) -> DrawResult<DB> {
    let body = root.titled(title, (FONT, 22))?;
    let single = runs.len() == 1;
    let (mut loss, mut acc) = (Vec::new(), Vec::new());
    for (i, run) in runs.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let val_color = if single { PALETTE[1] } else { color };
        let (train, val) = if single {
            ("train".to_owned(), "validation".to_owned())
        } else {
            (format!("{} train", run.name), format!("{} val", run.name))
        };
        let e = &run.epochs;
        let x = |epoch: usize| epoch as f64;
        let loss_curves = [
            (
                train.clone(),
                color,
                false,
                finite(e.iter().map(|r| (x(r.epoch), r.train_loss))),
            ),
            (
                val.clone(),
                val_color,
                true,
                finite(e.iter().filter_map(|r| Some((x(r.epoch), r.val_loss?)))),
            ),
        ];
        let acc_curves = [
            (
                train,
                color,
                false,
                finite(e.iter().map(|r| (x(r.epoch), 100.0 * r.train_accuracy))),
            ),
            (
                val,
                val_color,
                true,
                finite(
                    e.iter()
                        .filter_map(|r| Some((x(r.epoch), 100.0 * r.val_accuracy?))),
                ),
            ),
        ];
        for (panel, curves) in [(&mut loss, loss_curves), (&mut acc, acc_curves)] {
            for (label, color, dashed, points) in curves {
                if !points.is_empty() {
                    panel.push(Curve {
                        label,
                        color,
                        dashed,
                        points,
                    });
                }
            }
        }
    }
    let epochs = runs.iter().flat_map(|r| r.epochs.iter().map(|e| e.epoch));
    let (first, last) = epochs.fold((usize::MAX, 0), |(lo, hi), e| (lo.min(e), hi.max(e)));
    let panels = body.split_evenly((1, 2));
    let (left, right) = (&panels[0], &panels[1]);
    draw_panel(
        left,
        "loss",
        "cross-entropy loss (nats)",
        (first, last),
        &loss,
        (Some(0.0), None),
        SeriesLabelPosition::UpperRight,
    )?;
    draw_panel(
        right,
        "accuracy",
        "accuracy (%)",
        (first, last),
        &acc,
        (Some(0.0), Some(100.0)),
        SeriesLabelPosition::LowerRight,
    )
}

/// Integer ticks from `first` to `last`, at most about ten.
fn epoch_ticks(first: usize, last: usize) -> Vec<f64> {
    let step = (last - first) / 10 + 1;
    (first..=last).step_by(step).map(|e| e as f64).collect()
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    caption: &str,
    y_desc: &str,
    (first, last): (usize, usize),
    curves: &[Curve],
    bounds: (Option<f64>, Option<f64>),
    legend_at: SeriesLabelPosition,
) -> DrawResult<DB> {
    let (y0, y1) = padded_range(
        curves.iter().flat_map(|c| c.points.iter().map(|p| p.1)),
        bounds,
    );
    let x_range = TickedAxis::linear(
        (first as f64 - 0.5)..(last as f64 + 0.5),
        epoch_ticks(first, last),
    );
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 16))
        .margin(10)
        .x_label_area_size(42)
        .y_label_area_size(64)
        .build_cartesian_2d(x_range, y0..y1)?;
    let span = y1 - y0;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(y_desc)
        .label_style((FONT, 12))
        .axis_desc_style((FONT, 14))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| tick_label(*y, span))
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.08))
        .draw()?;
    for c in curves {
        let style = ShapeStyle {
            color: c.color.to_rgba(),
            filled: false,
            stroke_width: 2,
        };
        if c.dashed {
            chart
                .draw_series(DashedLineSeries::new(c.points.clone(), 7, 4, style))?
                .label(c.label.as_str())
                .legend(move |(x, y)| {
                    DashedPathElement::new(vec![(x, y), (x + 22, y)], 5, 3, style)
                });
            chart.draw_series(c.points.iter().map(|&p| Circle::new(p, 3, style)))?;
        } else {
            chart
                .draw_series(LineSeries::new(c.points.clone(), style))?
                .label(c.label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 22, y)], style));
            chart.draw_series(c.points.iter().map(|&p| Circle::new(p, 3, style.filled())))?;
        }
    }
    chart
        .configure_series_labels()
        .position(legend_at)
        .label_font((FONT, 12))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()
}
