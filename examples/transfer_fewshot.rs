//! Few-shot transfer on the bundled data from the command line: digits 0–4 → 5–9 (MNIST-10k)
//! or Fashion-MNIST → MNIST-10k, LeNet-5, scratch against transfer with several freezing
//! choices, mean ± std over seeds. Prints the summary table (the notebook 04 experiment).
//!
//! ```text
//! cargo run --release --example transfer_fewshot -- <digits|fashion> [steps] [batch] [lr] [source_epochs] [k,k,..]
//! ```
use lepton::prelude::*;

fn main() -> lepton::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map(String::as_str).unwrap_or("digits");
    let digits = mode != "fashion";
    // `same`: the source is trained on the target task itself (a control: transfer must then help)
    let lo_classes: &[u8] = if mode == "same" { &[5, 6, 7, 8, 9] } else { &[0, 1, 2, 3, 4] };
    let steps: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(300);
    let batch: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(64);
    let lr: f64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1e-3);
    let src_epochs: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(if digits { 20 } else { 10 });
    let ks: Vec<Shots> = match args.get(5) {
        Some(list) => list.split(',').map(|k| k.parse().map(Shots::K).unwrap_or(Shots::All)).collect(),
        None => vec![Shots::K(1), Shots::K(5), Shots::K(10), Shots::K(50), Shots::K(100), Shots::All],
    };
    let seeds = [0u64, 1, 2];
    let arch = if std::env::var("ARCH").as_deref() == Ok("lenet300") { Arch::LeNet300 } else { Arch::LeNet5 };
    let cfg = TrainConfig::default().with_progress(false);
    let m_train = mnist10k(Split::Train)?;
    let m_test = mnist10k(Split::Test)?;
    let t0 = std::time::Instant::now();
    let (src, train, test, exp) = if digits {
        let lo = m_train.filter_classes(lo_classes, true)?;
        let mut s = Session::with_classes(arch, 5, lo, None, cfg.clone())?;
        s.fit(src_epochs)?;
        let acc = s.evaluate(&m_test.filter_classes(lo_classes, true)?)?.accuracy;
        println!("source digits 0-4: {:.2} % after {src_epochs} epochs", 100.0 * acc);
        (s, m_train.filter_classes(&[5, 6, 7, 8, 9], true)?, m_test.filter_classes(&[5, 6, 7, 8, 9], true)?, "digits 0-4 -> 5-9")
    } else {
        let mut s = Session::new(arch, fashion_mnist(Split::Train)?, None, cfg.clone())?;
        s.fit(src_epochs)?;
        let acc = s.evaluate(&fashion_mnist(Split::Test)?)?.accuracy;
        println!("source Fashion-MNIST: {:.2} % after {src_epochs} epochs", 100.0 * acc);
        (s, m_train.clone(), m_test.clone(), "Fashion-MNIST -> MNIST-10k")
    };
    println!("source trained in {:.0} s; runs: {steps} steps of batch {batch} at lr {lr:e}", t0.elapsed().as_secs_f64());
    let fs = FewShotConfig { train: cfg.clone().with_batch_size(batch).with_learning_rate(lr), steps, max_epochs: steps };
    let t0 = std::time::Instant::now();
    let lenet5 = arch == Arch::LeNet5;
    let conv: &[(&str, f64)] = if lenet5 { &[("conv1", 0.0), ("conv2", 0.0)] } else { &[("fc1", 0.0)] };
    let conv_fc1: &[(&str, f64)] = if lenet5 { &[("conv1", 0.0), ("conv2", 0.0), ("fc1", 0.0)] } else { &[("fc1", 0.0), ("fc2", 0.1)] };
    let slow: &[(&str, f64)] = if lenet5 { &[("conv1", 0.1), ("conv2", 0.1), ("fc1", 0.1), ("fc2", 0.1)] } else { &[("fc1", 0.1), ("fc2", 0.1)] };
    let mut runs = few_shot(exp, "frozen conv", TransferMethod::Scaled(&src, conv), &train, &test, &ks, &seeds, &fs)?;
    runs.extend(few_shot(exp, "frozen conv+fc1", TransferMethod::Scaled(&src, conv_fc1), &train, &test, &ks, &seeds, &fs)?);
    runs.extend(few_shot(exp, "backbone at 0.1x", TransferMethod::Scaled(&src, slow), &train, &test, &ks, &seeds, &fs)?);
    runs.extend(few_shot(exp, "frozen backbone", TransferMethod::Frozen(&src), &train, &test, &ks, &seeds, &fs)?);
    runs.extend(few_shot(exp, "fine-tune", TransferMethod::FineTune(&src), &train, &test, &ks, &seeds, &fs)?);
    runs.extend(few_shot(exp, "scratch", TransferMethod::Scratch(arch), &train, &test, &ks, &seeds, &fs)?);
    if std::env::var("CONV_ONLY").is_ok() && lenet5 {
        // conv layers from the source, classifier layers freshly initialised (per seed)
        for &sh in &ks {
            for &seed in &seeds {
                let data = match sh { Shots::K(k) => train.per_class_sample(k, seed)?, Shots::All => train.clone() };
                let n = data.len();
                let src_t = src.tensors();
                let fresh = <LeNet5Net<6, 16, 256, 120, 84, 5> as Classifier>::build(&dfdx::tensor::Cpu::seed_from_u64(seed))?;
                let mut t = lepton::nn::checkpoint::tensors_of(&fresh);
                for (p, _, v) in t.iter_mut() {
                    if p.starts_with("conv") {
                        *v = src_t.iter().find(|x| &x.0 == p).map(|x| x.2.clone()).unwrap_or_default();
                    }
                }
                let model: LeNet5Net<6, 16, 256, 120, 84, 5> = lepton::prune::model_from_tensors(&t)?;
                let bs = batch.min(n);
                let tc = cfg.clone().with_batch_size(bs).with_learning_rate(lr).with_seed(seed);
                let mut s = Session::from_model(model, data, None, tc)?;
                if std::env::var("CONV_ONLY").as_deref() == Ok("frozen") {
                    s.freeze(&["conv1", "conv2"])?;
                }
                let epochs = steps.div_ceil(n.div_ceil(bs)).max(1);
                s.fit(epochs)?;
                let r = s.evaluate(&test)?;
                runs.push(RunRow { experiment: exp.into(), method: "conv only (fresh fc)".into(), x: sh.x(&train), seed, accuracy: r.accuracy,
                    errors: 0, test_samples: r.samples, train_samples: n, steps: s.steps(), train_seconds: 0.0 });
            }
        }
    }
    println!("{} runs in {:.0} s", runs.len(), t0.elapsed().as_secs_f64());
    println!("{}", runs.summary_table());
    Ok(())
}
