//! The fuzz targets' kept inputs replayed on the stable toolchain: every seed in
//! `fuzz/corpus/<target>/` and every input that once found a bug in `fuzz/regressions/<target>/`
//! goes through the same entry point the fuzzer drives (`pingone_bypass::fuzzing`), so that a
//! fixed crash stays fixed in CI, which runs no fuzzer (docs/fuzzing.md).

use std::path::Path;

fn kept_inputs(target: &str) -> Vec<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    ["corpus", "regressions"]
        .iter()
        .filter_map(|kind| std::fs::read_dir(root.join(kind).join(target)).ok())
        .flatten()
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_file())
        .collect()
}

#[test]
fn every_kept_fuzz_input_goes_through_its_target_without_a_panic() {
    for (target, entry) in pingone_bypass::fuzzing::TARGETS {
        let inputs = kept_inputs(target);
        assert!(!inputs.is_empty(), "fuzz/corpus/{target} has seeds");
        for input in inputs {
            let bytes = std::fs::read(&input).expect("a kept input reads");
            let replayed = std::panic::catch_unwind(|| entry(&bytes));
            assert!(replayed.is_ok(), "{} panics {target}", input.display());
        }
    }
}
