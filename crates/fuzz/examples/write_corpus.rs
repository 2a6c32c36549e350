//! Writes the seed corpus of every fuzz target to `fuzz/corpus/<target>/`, replacing the seeds of
//! an earlier generation (files of the same names) and keeping every other file there.
//!
//! `cargo run -p adi-fuzz --example write_corpus`

use std::fs;
use std::path::Path;

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    for target in adi_fuzz::TARGETS {
        let dir = root.join(target.name);
        fs::create_dir_all(&dir)?;
        let seeds = adi_fuzz::seeds::seeds(target.name);
        for seed in &seeds {
            fs::write(dir.join(&seed.name), &seed.bytes)?;
        }
        println!("{}: {} seeds", target.name, seeds.len());
    }
    Ok(())
}
