//! Trains the baselines of notebook 01 from the command line and prints test accuracy.
//!
//! ```text
//! cargo run --release --example train_baseline -- <lenet300|lenet5|lenet5-pad2> <fashion|mnist10k> [epochs] [seed]
//! ```
//! Defaults: 10 epochs on Fashion-MNIST, 30 on MNIST-10k, seed 0, Adam 1e-3, batch 128.
use lepton::prelude::*;

fn main() -> lepton::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arch = match args.first().map(String::as_str).unwrap_or("lenet300") {
        "lenet5" => Arch::LeNet5,
        "lenet5-pad2" => Arch::LeNet5Padded,
        _ => Arch::LeNet300,
    };
    let fashion = args.get(1).map(String::as_str).unwrap_or("fashion") != "mnist10k";
    let default_epochs = if fashion { 10 } else { 30 };
    let epochs = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(default_epochs);
    let seed = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(0);
    let (train, test) = if fashion {
        (fashion_mnist(Split::Train)?, fashion_mnist(Split::Test)?)
    } else {
        (mnist10k(Split::Train)?, mnist10k(Split::Test)?)
    };
    let config = TrainConfig::default().with_epochs(epochs).with_seed(seed);
    let start = std::time::Instant::now();
    let mut s = Session::new(arch, train, None, config)?;
    s.run()?;
    let r = s.evaluate(&test)?;
    println!(
        "{arch} on {}: test accuracy {:.2}% loss {:.4} after {epochs} epochs (seed {seed}, {:.1} s)",
        test.name(),
        r.accuracy * 100.0,
        r.loss,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
