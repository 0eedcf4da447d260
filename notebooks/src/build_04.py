#!/usr/bin/env python3
"""Writes notebooks/04_transfer.ipynb from the cells below (markdown and Rust), so the notebook's
source reads as a diff in review. Run: python3 notebooks/src/build_04.py"""
from nbgen import code, export_section, md, write

md(r"""
# 04 · Transfer learning: a trained backbone on a new task

**Goal.** Train LeNet-5 on one task, move it to another and measure — over 3 seeds, with
mean ± standard deviation — when the move pays off:

1. a typed head swap (`10 → 5` classes is a new type) that keeps every backbone tensor bit for bit;
2. freezing by tensor path or layer prefix, and per-group learning rates;
3. **experiment 2** — MNIST digits 0–4 → digits 5–9: accuracy against labelled examples per
   class (1, 5, 10, 50, 100, all) for a frozen backbone, frozen convolutions (with the source's
   or a new classifier), full fine-tuning, and training from scratch — and a control whose
   source has seen the target classes;
4. **experiment 1** — Fashion-MNIST → MNIST-10k, the same curves, a harder move;
5. a pruned backbone (8 % of the weights) moved to the new task: does compression survive?
6. every run as a row in `out/04_transfer_runs.parquet`.

**Run time** (2 CPU cores, evcxr kernel):

| mode | what | time |
| --- | --- | --- |
| quick (`LEPTON_QUICK=1`, what CI runs) | k ∈ {1, 5, 10, 100, all}, 3 seeds, 100 steps of batch 32 per run; Fashion source from notebook 01's quick checkpoint | ~6 min (367 s measured, compiling included) |
| full (`LEPTON_QUICK` unset) | k ∈ {1, 5, 10, 50, 100, all}, 3 seeds, 300 steps of batch 64 per run; full-size sources | ~16 min (990 s measured, cores shared with another build) |
""")
md(r"""
## Setup

Every run is budgeted in optimiser *steps*, not epochs: a run on 5 images and a run on 4,000
take the same number of updates, so the curves compare data, not compute.
""")
code(r""":dep lepton = { path = ".." }""")
code(r"""
use lepton::prelude::*;
use std::time::Instant;
""")
code(r"""
let quick: bool = matches!(std::env::var("LEPTON_QUICK").as_deref(), Ok("1") | Ok("true") | Ok("yes"));
let seeds: Vec<u64> = vec![0, 1, 2];
let shots: Vec<Shots> = if quick {
    vec![Shots::K(1), Shots::K(5), Shots::K(10), Shots::K(100), Shots::All]
} else {
    vec![Shots::K(1), Shots::K(5), Shots::K(10), Shots::K(50), Shots::K(100), Shots::All]
};
let fs = if quick {
    FewShotConfig { train: TrainConfig::default().with_batch_size(32), steps: 100, max_epochs: 100 }
} else {
    FewShotConfig { train: TrainConfig::default().with_batch_size(64), steps: 300, max_epochs: 300 }
};
// source models: epochs on their own task (Adam 1e-3, batch 128)
let (src_epochs_digits, src_epochs_fashion): (usize, usize) = if quick { (20, 3) } else { (20, 10) };
let cfg = TrainConfig::default().with_seed(0).with_progress(false);
std::fs::create_dir_all("checkpoints")?;
std::fs::create_dir_all("out")?;
println!("mode: {}", if quick { "QUICK (LEPTON_QUICK=1)" } else { "FULL" });
println!("few-shot runs: {} steps of batch {}, seeds {:?}", fs.steps, fs.train.batch_size, seeds);
""")
md(r"""
## Data

MNIST-10k (8,000 train / 2,000 test, stratified) split by digit: 0–4 is the source task,
5–9 relabelled 0–4 the target task (`filter_classes(.., true)`). Fashion-MNIST is the source of
experiment 1. The `k` examples of a seed are the same for every method.
""")
code(r"""
let m_train = mnist10k(Split::Train)?;
let m_test = mnist10k(Split::Test)?;
let lo_train = m_train.filter_classes(&[0, 1, 2, 3, 4], true)?;
let lo_test = m_test.filter_classes(&[0, 1, 2, 3, 4], true)?;
let hi_train = m_train.filter_classes(&[5, 6, 7, 8, 9], true)?;
let hi_test = m_test.filter_classes(&[5, 6, 7, 8, 9], true)?;
let f_train = if quick { fashion_mnist(Split::Train)?.per_class_sample(600, 0)? } else { fashion_mnist(Split::Train)? };
let f_test = fashion_mnist(Split::Test)?;
for ds in [&lo_train, &lo_test, &hi_train, &hi_test, &f_train, &f_test] {
    println!("{:<36} {:>6} images, {} classes {:?}", ds.name(), ds.len(), ds.num_classes(), ds.class_names());
}
assert_eq!(hi_train.labels().iter().max(), Some(&4), "5-9 relabelled 0-4");
assert_eq!(lo_train.len() + hi_train.len(), m_train.len());
""")
md(r"""
## Baselines with units: the source models

LeNet-5 (44,426 parameters, 174 KiB as f32) trained on digits 0–4 (a 5-way head: 43,586
parameters) and on Fashion-MNIST (notebook 01's checkpoint when it is present). Test accuracy
on the source task, in %.
""")
code(r"""
let t0 = Instant::now();
let mut src_digits = Session::with_classes(Arch::LeNet5, 5, lo_train.clone(), None, cfg.clone())?;
src_digits.fit(src_epochs_digits)?;
let src_digits_acc = src_digits.evaluate(&lo_test)?.accuracy;
let ck_fashion = "checkpoints/lenet5_fashion.safetensors";
let src_fashion = if std::path::Path::new(ck_fashion).exists() {
    println!("Fashion-MNIST source: loaded {ck_fashion} (notebook 01)");
    Session::from_checkpoint(Arch::LeNet5, ck_fashion, f_train.clone(), None, cfg.clone())?
} else {
    let mut s = Session::new(Arch::LeNet5, f_train.clone(), None, cfg.clone())?;
    s.fit(src_epochs_fashion)?;
    s.save(ck_fashion)?;
    s
};
let src_fashion_acc = src_fashion.evaluate(&f_test)?.accuracy;
println!("{:<28} {:>9} {:>11}", "source model", "params", "test acc %");
println!("{:<28} {:>9} {:>11.2}", format!("{} digits 0-4", src_digits.arch_name()), src_digits.size().total_params(), 100.0 * src_digits_acc);
println!("{:<28} {:>9} {:>11.2}", "LeNet-5 Fashion-MNIST", src_fashion.size().total_params(), 100.0 * src_fashion_acc);
println!("({:.0} s)", t0.elapsed().as_secs_f64());
""")
code(r"""
// check: both sources learned their task (chance: 20 % and 10 %)
assert_eq!(src_digits.size().total_params(), 44_426 - 85 * 5);
assert!(src_digits_acc > 0.90, "digits 0-4 source {src_digits_acc}");
assert!(src_fashion_acc > 0.70, "Fashion source {src_fashion_acc}");
""")
md(r"""
## Concept: reuse the features, replace the head

A network is a feature extractor $\phi_\theta$ followed by a linear head $W$:
$\hat y = \mathrm{softmax}(W\,\phi_\theta(x) + b)$. Transfer keeps $\theta$ from the source
task and draws a new head for the target's classes (Yosinski et al. 2014, *How transferable
are features in deep neural networks?*). Then either

- **frozen backbone** — train only $W, b$: a linear classifier on fixed features, few
  parameters (425 here), little to overfit; or
- **fine-tuning** — train everything from $\theta$, which adapts the features but can overfit
  a handful of examples.

Against both stands **training from scratch** on the same $k$ examples per class.

In lepton the head swap is a *typed* operation: `swap_head::<_, 5>` turns
`LeNet5Net<6, 16, 256, 120, 84, 10>` into `LeNet5Net<6, 16, 256, 120, 84, 5>`, so a 10-way
model cannot be passed where the 5-way one is expected. `Session::transfer(classes, ..)` does
the same for notebook sessions. Freezing is a learning-rate scale of 0 by path prefix
(`w ← w_old + s·(w_new − w_old)` after each step, exactly the optimiser at `s·lr`).
""")
code(r"""
// the typed head swap: every backbone tensor bit for bit, a new 5-way head
{
    let typed: &LeNet5 = src_fashion.typed::<LeNet5>().ok_or_else(|| LeptonError::config("session", "?", "not a LeNet-5"))?.model();
    let five: LeNet5Net<6, 16, 256, 120, 84, 5> = swap_head::<_, 5>(typed, 0)?;
    let before = lepton::nn::checkpoint::tensors_of(typed);
    let after = lepton::nn::checkpoint::tensors_of(&five);
    let mut same = 0;
    for ((p, _, a), (q, s, b)) in before.iter().zip(&after) {
        assert_eq!(p, q);
        if p.starts_with("fc3") {
            println!("{q:<14} new head {s:?}");
        } else {
            assert!(a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()), "{p} changed");
            same += 1;
        }
    }
    println!("{same} backbone tensors copied bit for bit");
}
""")
code(r"""
// freezing by prefix: a frozen tensor is bit-identical after training
let mut demo = src_digits.transfer(5, hi_train.per_class_sample(10, 0)?, None, cfg.clone())?;
let frozen = demo.freeze_backbone()?;
println!("frozen: {frozen:?}");
let w0 = demo.tensors();
demo.fit(5)?;
let w1 = demo.tensors();
for ((p, _, a), (_, _, b)) in w0.iter().zip(&w1) {
    let moved = a.iter().zip(b).filter(|(x, y)| x.to_bits() != y.to_bits()).count();
    println!("{p:<14} {moved:>6} of {:>6} values changed", a.len());
    assert_eq!(moved == 0, frozen.contains(p), "{p}");
}
// a bad prefix is an error, not a silent no-op
assert!(demo.freeze(&["conv3"]).is_err());
""")
md(r"""
## Experiment 2: digits 0–4 → digits 5–9

The source saw only 0–4; the target classes are new. Each point is the mean of 3 seeds (a
seed draws the $k$ examples, the new head and the batch order), the bar one standard deviation;
"all" is the whole target training set (about 800 per class).
""")
code(r"""
let t0 = Instant::now();
let exp2 = "digits 0-4 -> 5-9";
let conv_frozen: &[(&str, f64)] = &[("conv1", 0.0), ("conv2", 0.0)];
let conv: &[&str] = &["conv1", "conv2"];
let mut runs2 = few_shot(exp2, "frozen backbone", TransferMethod::Frozen(&src_digits), &hi_train, &hi_test, &shots, &seeds, &fs)?;
runs2.extend(few_shot(exp2, "frozen conv, source fc", TransferMethod::Scaled(&src_digits, conv_frozen), &hi_train, &hi_test, &shots, &seeds, &fs)?);
runs2.extend(few_shot(exp2, "frozen conv, new fc", TransferMethod::Layers { source: &src_digits, keep: conv, freeze: true }, &hi_train, &hi_test, &shots, &seeds, &fs)?);
runs2.extend(few_shot(exp2, "fine-tune", TransferMethod::FineTune(&src_digits), &hi_train, &hi_test, &shots, &seeds, &fs)?);
runs2.extend(few_shot(exp2, "scratch", TransferMethod::Scratch(Arch::LeNet5), &hi_train, &hi_test, &shots, &seeds, &fs)?);
println!("{} runs in {:.0} s", runs2.len(), t0.elapsed().as_secs_f64());
runs2.summary_table()
""")
code(r"""
let fig = runs2.plot(exp2, true)?;
fig.save_svg("out/04_fewshot_digits.svg")?;
fig
""")
code(r"""
// check: at 1, 5 and 10 examples per class, transfer of the convolutional features with a
// new classifier beats training from scratch (means of 3 seeds; the two differ only in the
// conv weights: the fc layers of a seed are drawn identically); and fine-tuning adapts the
// features (beats the frozen backbone from k = 10 on). Every method is printed at every k.
/// Mean test accuracy over the seeds of (experiment, method, k); NaN if there is no such run.
fn mean(t: &RunTable, e: &str, m: &str, k: f64) -> f64 {
    t.mean(e, m, k).map(|r| r.mean_accuracy).unwrap_or(f64::NAN)
}
let methods = ["frozen backbone", "frozen conv, source fc", "frozen conv, new fc", "fine-tune", "scratch"];
let ks2: Vec<f64> = runs2.summary().iter().filter(|r| r.method == "scratch").map(|r| r.x).collect();
let all2 = ks2.iter().copied().fold(0.0, f64::max);
for &k in &ks2 {
    let row: Vec<String> = methods.iter().map(|m| format!("{m} {:5.1} %", 100.0 * mean(&runs2, exp2, m, k))).collect();
    println!("k = {k:>6.1}: {}", row.join(", "));
}
for k in [1.0, 5.0, 10.0] {
    let (t, sc) = (mean(&runs2, exp2, "frozen conv, new fc", k), mean(&runs2, exp2, "scratch", k));
    assert!(t > sc, "k = {k}: conv transfer {t} vs scratch {sc}");
}
for k in [10.0, all2] {
    assert!(mean(&runs2, exp2, "fine-tune", k) > mean(&runs2, exp2, "frozen backbone", k) + 0.05, "k = {k}");
}
""")
md(r"""
## A control: a source that has seen the target classes

Is the machinery at fault, or the features? The same recipe with a source trained on digits
5–9 themselves (all 3,894 training images — an upper bound, not a transfer anyone could do)
must beat scratch by far at every small $k$.
""")
code(r"""
let t0 = Instant::now();
let mut src_same = Session::with_classes(Arch::LeNet5, 5, hi_train.clone(), None, cfg.clone())?;
src_same.fit(src_epochs_digits)?;
let small: Vec<Shots> = vec![Shots::K(1), Shots::K(5), Shots::K(10)];
let exp_c = "control: digits 5-9 -> 5-9";
let mut runs_c = few_shot(exp_c, "frozen backbone", TransferMethod::Frozen(&src_same), &hi_train, &hi_test, &small, &seeds, &fs)?;
runs_c.extend(few_shot(exp_c, "scratch", TransferMethod::Scratch(Arch::LeNet5), &hi_train, &hi_test, &small, &seeds, &fs)?);
println!("{} runs in {:.0} s", runs_c.len(), t0.elapsed().as_secs_f64());
runs_c.summary_table()
""")
code(r"""
// check: with features made for these classes, transfer wins by more than 5 points at k = 1, 5, 10
for k in [1.0, 5.0, 10.0] {
    let (t, sc) = (mean(&runs_c, exp_c, "frozen backbone", k), mean(&runs_c, exp_c, "scratch", k));
    println!("k = {k:>3}: frozen backbone {:.1} %, scratch {:.1} %", 100.0 * t, 100.0 * sc);
    assert!(t > sc + 0.05, "control at k = {k}: {t} vs {sc}");
}
""")
md(r"""
## Experiment 1: Fashion-MNIST → MNIST-10k

Clothing to digits: the source's features (edges, textures of garments) are further from the
target than in experiment 2.
""")
code(r"""
let t0 = Instant::now();
let exp1 = "Fashion-MNIST -> MNIST-10k";
let conv_frozen: &[(&str, f64)] = &[("conv1", 0.0), ("conv2", 0.0)];
let conv: &[&str] = &["conv1", "conv2"];
let mut runs1 = few_shot(exp1, "frozen backbone", TransferMethod::Frozen(&src_fashion), &m_train, &m_test, &shots, &seeds, &fs)?;
runs1.extend(few_shot(exp1, "frozen conv, source fc", TransferMethod::Scaled(&src_fashion, conv_frozen), &m_train, &m_test, &shots, &seeds, &fs)?);
runs1.extend(few_shot(exp1, "frozen conv, new fc", TransferMethod::Layers { source: &src_fashion, keep: conv, freeze: true }, &m_train, &m_test, &shots, &seeds, &fs)?);
runs1.extend(few_shot(exp1, "fine-tune", TransferMethod::FineTune(&src_fashion), &m_train, &m_test, &shots, &seeds, &fs)?);
runs1.extend(few_shot(exp1, "scratch", TransferMethod::Scratch(Arch::LeNet5), &m_train, &m_test, &shots, &seeds, &fs)?);
println!("{} runs in {:.0} s", runs1.len(), t0.elapsed().as_secs_f64());
runs1.summary_table()
""")
code(r"""
let fig = runs1.plot(exp1, true)?;
fig.save_svg("out/04_fewshot_fashion_to_mnist.svg")?;
fig
""")
code(r"""
// check (a measurement, not a claim): print where transfer helps and where it does not; the
// frozen backbone must beat chance (10 %) at least twice over at every k
for r in runs1.summary().iter().filter(|r| r.method == "scratch") {
    let fr = mean(&runs1, exp1, "frozen backbone", r.x);
    let (best_m, best) = methods[..4].iter().map(|m| (*m, mean(&runs1, exp1, m, r.x))).fold(("", f64::NEG_INFINITY), |a, b| if b.1 > a.1 { b } else { a });
    println!("k = {:>6.1}: best transfer {:.1} % ({best_m}) vs scratch {:.1} % -> {}", r.x, 100.0 * best, 100.0 * r.mean_accuracy,
        if best > r.mean_accuracy { "transfer helps" } else { "transfer does not help" });
    assert!(fr > 0.2, "frozen Fashion features at k = {}: {fr}", r.x);
}
""")
md(r"""
## A pruned backbone on the new task

Prune the digits 0–4 source to about 8 % of its weights with notebook 02's per-layer targets
(Han et al.'s LeNet-5 fractions), recover with a few epochs of masked training, and transfer it.
`transfer` carries the backbone's masks (the new head is dense), so fine-tuning keeps every
pruned weight at exactly 0.
""")
code(r"""
let t0 = Instant::now();
let targets = PruneMethod::PerLayer(vec![
    ("conv1.weight".into(), 0.34), ("conv2.weight".into(), 0.88), ("fc1.weight".into(), 0.94),
    ("fc2.weight".into(), 0.93), ("fc3.weight".into(), 0.81),
]);
// a copy of the source (transfer to the same 5 classes; the head is redrawn and retrained)
let mut pruned = src_digits.transfer(5, lo_train.clone(), None, cfg.clone())?;
// Zhu-Gupta from 0 to the targets over all but the last `recover` epochs, masks updated 4x per epoch
let (prune_epochs, recover): (usize, usize) = if quick { (3, 1) } else { (8, 3) };
let spe = pruned.steps_per_epoch();
let freq = (spe / 4).max(1);
pruned.set_gradual_pruning(GradualPruning::new(targets, 0.0, 0, freq, (prune_epochs - recover) * spe / freq)?)?;
pruned.fit(prune_epochs)?;
let pruned_acc = pruned.evaluate(&lo_test)?.accuracy;
let sp = pruned.sparsity();
println!("pruned source: {:.2} % of weights kept, test accuracy {:.2} % (dense {:.2} %), {:.0} s",
    100.0 * sp.weights_kept(), 100.0 * pruned_acc, 100.0 * src_digits_acc, t0.elapsed().as_secs_f64());
sp
""")
code(r"""
let t0 = Instant::now();
let few: Vec<Shots> = vec![Shots::K(10), Shots::All];
let mut runs_p = few_shot(exp2, "frozen backbone (8 % weights)", TransferMethod::Frozen(&pruned), &hi_train, &hi_test, &few, &seeds, &fs)?;
runs_p.extend(few_shot(exp2, "fine-tune (8 % weights)", TransferMethod::FineTune(&pruned), &hi_train, &hi_test, &few, &seeds, &fs)?);
runs_p.extend(few_shot(exp2, "frozen conv, new fc (8 % weights)", TransferMethod::Layers { source: &pruned, keep: conv, freeze: true }, &hi_train, &hi_test, &few, &seeds, &fs)?);
// the backbone's zeros after fine-tuning on the new task
let mut moved = pruned.transfer(5, hi_train.per_class_sample(10, 0)?, None, cfg.clone())?;
moved.fit(20)?;
/// Fraction of the backbone's weights (not the head's, not biases) that are non-zero.
fn backbone_kept(s: &SparsityReport) -> f64 {
    let (nz, n) = s.layers.iter().filter(|l| !l.path.starts_with("fc3") && l.shape.len() >= 2).fold((0, 0), |(a, b), l| (a + l.nonzero, b + l.params));
    nz as f64 / n as f64
}
let (kept_before, kept_after) = (backbone_kept(&pruned.sparsity()), backbone_kept(&moved.sparsity()));
println!("backbone weights kept: {:.3} % before, {:.3} % after fine-tuning on 5-9 ({:.0} s)", 100.0 * kept_before, 100.0 * kept_after, t0.elapsed().as_secs_f64());
runs_p.summary_table()
""")
code(r"""
// check: the zeros survive the move exactly; a frozen sparse backbone transfers as well as
// the dense one (within 5 points); fine-tuning still adapts a sparse backbone (beats its
// frozen version) — the cost of sparsity in fine-tuning is printed, not assumed
assert_eq!(kept_after, kept_before);
assert!(kept_before < 0.10, "backbone kept {kept_before}");
let all_x = runs2.summary().iter().map(|r| r.x).fold(0.0, f64::max);
for k in [10.0, all_x] {
    let (fd, fp) = (mean(&runs2, exp2, "frozen backbone", k), mean(&runs_p, exp2, "frozen backbone (8 % weights)", k));
    let (td, tp) = (mean(&runs2, exp2, "fine-tune", k), mean(&runs_p, exp2, "fine-tune (8 % weights)", k));
    println!("k = {k:>6.1}: frozen: dense {:.2} %, pruned {:.2} %;  fine-tune: dense {:.2} %, pruned {:.2} % ({:+.2} points)",
        100.0 * fd, 100.0 * fp, 100.0 * td, 100.0 * tp, 100.0 * (tp - td));
    assert!(fp > fd - 0.05, "frozen pruned backbone at k = {k}: {fp} vs dense {fd}");
    assert!(tp > fp, "fine-tuning a pruned backbone at k = {k}: {tp} vs frozen {fp}");
    let (cd, cp) = (mean(&runs2, exp2, "frozen conv, new fc", k), mean(&runs_p, exp2, "frozen conv, new fc (8 % weights)", k));
    println!("            frozen conv, new fc: dense {:.2} %, pruned conv {:.2} % ({:+.2} points)", 100.0 * cd, 100.0 * cp, 100.0 * (cp - cd));
}
""")
export_section(r"""
## Every run is a row

All runs (experiment, method, k, seed, accuracy, errors, samples, steps, seconds) to Parquet
and CSV, and the summaries beside them; Python Polars reads them as they are.
""")
code(r"""
let mut all = RunTable::new("k per class");
all.extend(runs2.clone());
all.extend(runs1.clone());
all.extend(runs_p.clone());
all.extend(runs_c.clone());
all.write_parquet("out/04_transfer_runs.parquet")?;
all.write_csv("out/04_transfer_runs.csv")?;
all.summary_table().write_csv("out/04_transfer_summary.csv")?;
println!("{} runs written to out/04_transfer_runs.parquet / .csv, {} summary rows", all.len(), all.summary().len());
assert_eq!(all.len(), 5 * shots.len() * seeds.len() * 2 + 3 * few.len() * seeds.len() + 2 * small.len() * seeds.len());
""")
md(r"""
## What it means

Full mode measured the same ordering with larger margins at small k — conv features with a
new classifier 61.2 / 82.0 / 85.7 % against scratch 56.0 / 77.4 / 82.4 % at k = 1 / 5 / 10 —
and, with a Fashion-MNIST source trained on all 60,000 images (87.4 %), transfer to digits
helped at every k (e.g. 74.7 % against 68.7 % at k = 5). Quick mode measured (mean of 3 seeds;
the cells above print the numbers of your run):

| digits 0–4 → 5–9, k per class | 1 | 5 | 10 | 100 | all (~780) |
| --- | --- | --- | --- | --- | --- |
| frozen backbone (new head only) | 48.8 % | 54.8 % | 55.1 % | 59.1 % | 59.5 % |
| frozen conv, source fc layers trained on | 55.0 % | 76.7 % | 81.5 % | 90.5 % | 91.7 % |
| **frozen conv, new fc layers** | **61.2 %** | **82.3 %** | **85.3 %** | 92.2 % | 93.0 % |
| fine-tune everything | 53.8 % | 77.8 % | 81.5 % | **92.6 %** | **93.1 %** |
| scratch | 56.2 % | 77.3 % | 81.4 % | 91.4 % | 91.8 % |
| control: source trained on 5–9, frozen backbone | 96.4 % | 97.8 % | 98.2 % | | |

- **Transfer the features, not the classifier.** The convolutions learned on digits 0–4
  (strokes, loops, junctions) with a *freshly drawn* classifier beat training from scratch by
  4–5 points at 1, 5 and 10 examples per class — and the two runs of a seed differ only in the
  conv weights (the fc layers are drawn identically). Keeping the source's fully connected
  layers, frozen or fine-tuned, gives that advantage away.
- **A 5-class source collapses its top layers.** Trained to separate 0–4 only, the penultimate
  layer lies on the few directions that task needs (*neural collapse*): a head on it stalls
  near 60 % even with all the data, while the control — the same code with a source that has
  seen 5–9 — reaches 96 % from one example per class. How far up to cut is the question
  Yosinski et al. (2014) asked; here the answer is "below the first fully connected layer".
- **With enough data, scratch catches up.** From 100 examples per class on, the methods are
  within about a point: transfer buys sample efficiency, not a better final model.
- **Fashion-MNIST → MNIST-10k** is the honest counter-case in quick mode, whose Fashion source
  (notebook 01's quick checkpoint, 73.6 %) is weak: garment textures are not strokes.
  Conv features with a new classifier only tie with scratch at k = 1 and 5 (49.0 / 68.1 %
  against 48.8 / 67.9 %), and from k = 10 on every transfer is *worse* than scratch — the
  features of a different domain are a worse start than a random one once a few examples per
  class can shape their own.
- **Compression survives the move — in the features.** The 7 %-weights backbone (13.6× fewer
  parameters) keeps exactly its zeros after fine-tuning on the new task. Its pruned
  convolutions (conv1 66 %, conv2 12 % of the weights kept) with a new classifier transfer as
  well as the dense ones (85.1 / 92.6 % against 85.3 / 93.0 % at k = 10 / all). Frozen whole, it
  is as poor as the dense frozen backbone; fine-tuned whole, it loses 10–15 points: with 93 % of
  its fc weights pinned at 0 it can only re-weight what the source task kept.

**Question.** Try `set_lr_scale("conv1", 0.1)` and `set_lr_scale("conv2", 0.1)` after a
`transfer_layers` (slow conv, fast new classifier): does it beat frozen conv at k = 100?
""")

write("04_transfer.ipynb")
