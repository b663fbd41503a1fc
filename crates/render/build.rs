//! Rebuilds the crate when an embedded folder changes: `include_dir!` reads the templates and
//! the demo at compile time, but on stable Rust it cannot tell cargo which files it read
//! (include_dir 0.7 tracks them only with the nightly `tracked_path` feature), so an edited
//! template kept rendering as it was until something else changed.

fn main() {
    // A folder here makes cargo scan every file under it for a newer modification time.
    println!("cargo:rerun-if-changed=../../templates");
    println!("cargo:rerun-if-changed=../../examples/demo");
    println!("cargo:rerun-if-changed=build.rs");
}
