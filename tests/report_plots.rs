//! Line charts and weight histograms: SVG content, PNG and SVG files, error cases.

use std::path::PathBuf;

use lepton::prelude::{LineChart, Series, WeightHistograms};
use lepton::LeptonError;

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir()
        .join(format!("lepton-report-plots-test-{}", std::process::id()))
        .join(name)
}

fn is_plot_error<T>(r: lepton::Result<T>) -> bool {
    matches!(r, Err(LeptonError::Plot { .. }))
}

fn chart() -> LineChart {
    LineChart::new("accuracy after pruning", "sparsity (%)", "test accuracy (%)")
        .series(Series::new(
            "magnitude pruning",
            vec![(0.0, 98.1), (50.0, 98.0), (80.0, 97.6), (95.0, 94.2)],
        ))
        .series(Series::new(
            "random pruning",
            vec![(0.0, 98.1), (50.0, f64::NAN), (80.0, 71.0), (95.0, 30.5)],
        ))
}

#[test]
fn line_chart_svg_png_and_svg_file() {
    let fig = chart().plot().unwrap();
    assert_eq!((fig.width(), fig.height()), (820, 520));
    let svg = fig.svg();
    assert!(svg.starts_with("<svg"));
    for text in [
        "accuracy after pruning",
        "magnitude pruning",
        "random pruning",
        "sparsity (%)",
        "test accuracy (%)",
    ] {
        assert!(svg.contains(text), "SVG lacks {text:?}");
    }
    let png = tmp("lines.png");
    fig.save_png(&png).unwrap();
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let svg_path = tmp("lines.svg");
    fig.save_svg(&svg_path).unwrap();
    assert_eq!(std::fs::read_to_string(&svg_path).unwrap(), fig.svg());
    assert!(fig.to_string().contains("line chart"));
}

#[test]
fn line_chart_options() {
    // Log x axis (x <= 0 skipped), no markers, a y range that clips the curves.
    let fig = LineChart::new("loss", "learning rate", "loss")
        .series(Series::new(
            "sweep",
            vec![(0.0, 9.0), (1e-4, 2.0), (1e-3, 0.5), (1e-2, 0.3), (1e-1, 5.0)],
        ))
        .series(Series::new("single point", vec![(3e-3, 0.4)]))
        .log_x(true)
        .markers(false)
        .y_range(0.0, 2.5)
        .plot()
        .unwrap();
    assert!(fig.svg().contains("single point"));
    fig.save_png(tmp("lines-log.png")).unwrap();
    // A series with no finite point is left out; the others are drawn.
    let fig = chart()
        .series(Series::new("empty", vec![(f64::NAN, 1.0)]))
        .plot()
        .unwrap();
    assert!(fig.svg().contains("magnitude pruning"));
}

#[test]
fn line_chart_errors() {
    let empty = LineChart::new("t", "x", "y");
    assert!(is_plot_error(empty.plot()));
    let non_finite = LineChart::new("t", "x", "y").series(Series::new(
        "nan",
        vec![(f64::NAN, 1.0), (1.0, f64::INFINITY), (f64::NEG_INFINITY, 0.0)],
    ));
    assert!(is_plot_error(non_finite.plot()));
    let no_series_points = LineChart::new("t", "x", "y").series(Series::new("none", vec![]));
    assert!(is_plot_error(no_series_points.plot()));
    let non_positive = LineChart::new("t", "x", "y")
        .series(Series::new("a", vec![(0.0, 1.0), (-1.0, 2.0)]))
        .log_x(true);
    assert!(is_plot_error(non_positive.plot()));
    // The same points are fine on a linear axis.
    assert!(non_positive.log_x(false).plot().is_ok());
    assert!(is_plot_error(chart().y_range(1.0, 1.0).plot()));
    assert!(is_plot_error(chart().y_range(0.0, f64::NAN).plot()));
}

/// `n` weights, the first `zeros` of them zero, the rest spread over about -0.3..0.3.
fn weights(n: usize, zeros: usize) -> Vec<f32> {
    (0..n)
        .map(|i| {
            if i < zeros {
                0.0
            } else {
                let u = ((i * 7919) % 1000) as f32 / 1000.0 - 0.5;
                0.6 * u * u.abs().sqrt()
            }
        })
        .collect()
}

#[test]
fn weight_histograms_svg_and_png() {
    let fig = WeightHistograms::new("LeNet-300-100 weights", 60)
        .panel("fc1.weight", weights(10_000, 9_000))
        .panel("fc2.weight", weights(3_000, 0))
        .plot()
        .unwrap();
    let svg = fig.svg();
    for text in ["LeNet-300-100 weights", "fc1.weight", "fc2.weight", "non-zero"] {
        assert!(svg.contains(text), "SVG lacks {text:?}");
    }
    let png = tmp("hist.png");
    fig.save_png(&png).unwrap();
    assert_eq!(&std::fs::read(&png).unwrap()[..8], b"\x89PNG\r\n\x1a\n");
    // Four panels wrap onto a second row; a constant panel and NaNs are fine.
    let mut nan = weights(500, 100);
    nan[7] = f32::NAN;
    let fig = WeightHistograms::new("", 1000)
        .panel("a", weights(500, 0))
        .panel("b", nan)
        .panel("c", vec![0.0; 50])
        .panel("d", vec![0.25])
        .plot()
        .unwrap();
    assert!(fig.height() > 2 * 200);
}

#[test]
fn weight_histogram_errors() {
    let one = |bins| WeightHistograms::new("t", bins).panel("w", weights(100, 10));
    assert!(is_plot_error(one(0).plot()));
    assert!(is_plot_error(one(1001).plot()));
    assert!(one(1).plot().is_ok());
    assert!(is_plot_error(WeightHistograms::new("t", 10).plot()));
    let nan = WeightHistograms::new("t", 10)
        .panel("ok", weights(100, 0))
        .panel("all nan", vec![f32::NAN; 10]);
    assert!(is_plot_error(nan.plot()));
    let empty = WeightHistograms::new("t", 10).panel("empty", vec![]);
    assert!(is_plot_error(empty.plot()));
}

/// Distinct `fill="#RRGGBB"` colours of an SVG.
fn fills(svg: &str) -> std::collections::BTreeSet<String> {
    svg.match_indices("fill=\"#").map(|(i, _)| svg[i + 7..i + 13].to_string()).collect()
}

#[test]
fn clustered_histograms_colour_each_cluster() {
    // four clusters by value quartile, as k-means on one tensor gives contiguous intervals
    let w = weights(4_000, 0);
    let shared: Vec<f32> = w.iter().map(|&v| if v < -0.1 { -0.2 } else if v < 0.0 { -0.05 } else if v < 0.1 { 0.05 } else { 0.2 }).collect();
    let clusters = WeightHistograms::clusters_of_shared(&shared);
    assert_eq!(clusters.iter().copied().max(), Some(3));
    assert!(clusters.iter().zip(&w).all(|(&c, &v)| (c >= 2) == (v >= 0.0)), "numbered by increasing centroid");
    let plain = WeightHistograms::new("t", 80).panel("w", w.clone()).plot().unwrap();
    let fig = WeightHistograms::new("t", 80).clustered_panel("w", w.clone(), clusters.clone()).plot().unwrap();
    let svg = fig.svg();
    assert!(svg.contains("4 clusters") && svg.contains("one colour per cluster"), "caption and legend");
    // the plain panel has grey + blue bars; the clustered one four bar colours, no grey bars
    // beyond the legend swatch
    let (p, c) = (fills(&plain.svg()), fills(&svg));
    assert!(c.len() >= p.len() + 2, "{p:?} vs {c:?}");
    // a wrong number of indices, or too many clusters, is a typed error
    let short = WeightHistograms::new("t", 80).clustered_panel("w", w.clone(), clusters[1..].to_vec());
    assert!(is_plot_error(short.plot()));
    let many = WeightHistograms::new("t", 80).clustered_panel("w", w.clone(), (0..w.len()).collect());
    assert!(is_plot_error(many.plot()));
    // plain panels after a clustered one stay plain
    let mixed = WeightHistograms::new("t", 80).clustered_panel("a", w.clone(), clusters).panel("b", w).plot().unwrap();
    let m = mixed.svg();
    assert!(m.contains("a (4000 values, 4 clusters)") && m.contains("b (4000 values, ") && m.contains("% zero)"), "captions");
}
